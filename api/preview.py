"""``/api/preview``: "try it first" from the add dialog, one at a time, in a child process.

The web process never runs algorithm code: it checks the request (the parameters against the
file's declaration, read with ``ast``), starts ``python -m scripts.preview_worker`` and follows its
JSON lines from a thread. Fetching missing history and the replay each have a time limit; a child
that overruns (an algorithm that hangs) is killed and the preview reported as stopped.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from flask import Blueprint, current_app, jsonify

from api import algorithm_params, clock
from api.errors import ApiError
from api.json_body import json_object
from shared.config import REPO_ROOT

logger = logging.getLogger(__name__)

bp = Blueprint("preview", __name__)

FIELDS = ("algorithm_type", "ticker", "initial_capital", "parameters", "days")
MAX_DAYS = 60


@dataclass
class Preview:
    id: str
    request: Dict[str, Any]
    state: str = "fetching"          # fetching -> replaying -> done | failed | stopped
    progress: Dict[str, Any] = field(default_factory=lambda: {"phase": "starting", "done": 0, "total": 0})
    result: Optional[Dict[str, Any]] = None
    error: Optional[str] = None
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "stopped")

    def to_dict(self) -> dict:
        return {"id": self.id, "state": self.state, "progress": dict(self.progress),
                "seconds": round(time.monotonic() - self.started, 1), "result": self.result, "error": self.error}


class PreviewRunner:
    """Runs one preview child at a time and remembers the last one."""

    def __init__(self, *, fetch_limit: float, replay_limit: float, env: Optional[Dict[str, str]] = None):
        self.fetch_limit = fetch_limit
        self.replay_limit = replay_limit
        self.env = env or {}
        self._lock = threading.Lock()
        self._current: Optional[Preview] = None

    def start(self, request: Dict[str, Any]) -> Preview:
        with self._lock:
            if self._current is not None and not self._current.finished:
                raise ApiError(409, "a preview is already running; wait for it to finish",
                               preview_id=self._current.id)
            preview = Preview(uuid.uuid4().hex[:12], request)
            self._current = preview
        child = subprocess.Popen([sys.executable, "-m", "scripts.preview_worker"], cwd=REPO_ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 env={**os.environ, **self.env}, text=True, start_new_session=True)
        child.stdin.write(json.dumps({**request, "seconds": self.fetch_limit + self.replay_limit}))
        child.stdin.close()
        threading.Thread(target=self._follow, args=(preview, child), name=f"preview-{preview.id}",
                         daemon=True).start()
        return preview

    def get(self, preview_id: str) -> Optional[Preview]:
        current = self._current
        return current if current is not None and current.id == preview_id else None

    def _follow(self, preview: Preview, child: subprocess.Popen) -> None:
        lines: "list[str]" = []
        reader = threading.Thread(target=self._read, args=(preview, child, lines), daemon=True)
        reader.start()
        phase_started, phase = time.monotonic(), "fetching"
        while reader.is_alive():
            if preview.state != phase:
                phase_started, phase = time.monotonic(), preview.state
            limit = self.fetch_limit if phase == "fetching" else self.replay_limit
            if time.monotonic() - phase_started > limit:
                self._stop(child)
                what = "fetching the history" if phase == "fetching" else \
                    f"{preview.request['algorithm_type']} did not finish the backtest"
                preview.error = f"stopped after {limit:g} s: {what} in time"
                preview.state = "stopped"
                logger.warning("preview %s %s", preview.id, preview.error)
                return
            reader.join(0.1)
        child.wait()
        if not preview.finished:
            preview.error = preview.error or f"the preview process ended without an answer (exit {child.returncode})"
            preview.state = "failed"

    @staticmethod
    def _read(preview: Preview, child: subprocess.Popen, lines: list) -> None:
        for line in child.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "phase" in message:
                preview.progress = {k: message[k] for k in ("phase", "done", "total")}
                preview.state = "replaying" if message["phase"] == "replaying" else "fetching"
            elif "result" in message:
                preview.result, preview.state = message["result"], "done"
            elif "error" in message:
                preview.error, preview.state = str(message["error"]), "failed"

    @staticmethod
    def _stop(child: subprocess.Popen) -> None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()


def runner() -> PreviewRunner:
    app = current_app
    found = app.extensions.get("autotrader_preview")
    if found is None:
        found = PreviewRunner(fetch_limit=float(app.config["PREVIEW_FETCH_SECONDS"]),
                              replay_limit=float(app.config["PREVIEW_TIME_LIMIT_SECONDS"]),
                              env=app.config.get("PREVIEW_ENV"))
        app.extensions["autotrader_preview"] = found
    return found


def _request_from(body: Dict[str, Any]) -> Dict[str, Any]:
    """The worker's request from the dialog's body; 400/422 naming the field at fault."""
    from api.algorithms_routes import _parse_new_card, discovered_algorithms

    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(unknown)}")
    ticker, algo_type, capital = _parse_new_card({k: body.get(k) for k in ("ticker", "algorithm_type",
                                                                           "initial_capital")})
    names = [a["name"] for a in discovered_algorithms()]
    if algo_type not in names:
        raise ApiError(422, f"unknown algorithm_type {algo_type!r}; available: {', '.join(names) or 'none'}",
                       field="algorithm_type")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise ApiError(400, "parameters must be an object of name: value", field="parameters")
    folder = current_app.config["ALGORITHMS_DIR"]
    parameters = algorithm_params.checked_values(algo_type, folder, body.get("parameters"))
    days = body.get("days", current_app.config["PREVIEW_DAYS"])
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ApiError(400, f"days must be an integer from 1 to {MAX_DAYS}", field="days")
    return {"algorithm_type": algo_type, "ticker": ticker, "initial_capital": capital, "parameters": parameters,
            "days": days, "now": clock.stamp_or_refuse("no preview was started"),
            "stocks_db": str(current_app.config["STOCKS_DB"]), "algorithms_dir": folder and str(folder)}


@bp.post("/api/preview")
def start_preview():
    request = _request_from(json_object())
    preview = runner().start(request)
    logger.info("preview %s: %s %s %s over %d days", preview.id, request["algorithm_type"], request["ticker"],
                request["parameters"] or "", request["days"])
    return jsonify(preview.to_dict()), 202, {"Location": f"/api/preview/{preview.id}"}


@bp.get("/api/preview/<preview_id>")
def get_preview(preview_id: str):
    preview = runner().get(preview_id) if len(preview_id) <= 32 else None
    if preview is None:
        raise ApiError(404, f"preview {preview_id} not found (only the latest is kept)")
    return jsonify(preview.to_dict())

"""Optional webhook notifications (``NOTIFY_URL``), sent from a background queue.

Off unless ``NOTIFY_URL`` is set. Each message is POSTed as plain text (what ntfy and most chat
bridges accept), or as JSON ``{"event", "title", "text", "time"}`` when the URL asks for it with
a ``json+`` prefix (``json+https://hooks.example/...``). ``notify()`` only puts the message on a
bounded queue and returns: a worker thread sends it with a timeout and a few retries, so a slow
or dead receiver never delays a cycle or a request. Limits: the same ``key`` at most once per
``repeat_seconds``, and at most ``max_per_hour`` messages in all. Delivery failures are logged once
(and once again when delivery works again), never per message. The broker keys' values are
masked in every message, and the URL (which may hold a token) is never logged.

Stdlib only, shared by the orchestrator and the API; ``NotifySettings`` come from ``shared.config``.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, Iterable, List, Optional

from shared.config import NotifySettings, Settings

logger = logging.getLogger(__name__)

JSON_PREFIX = "json+"


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    text: str
    time: str


class Notifier:
    """Queue, rate limits and the sending thread; ``enabled`` is False without a URL."""

    def __init__(self, settings: NotifySettings, *, secrets: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.enabled = bool(settings.url)
        self.as_json = settings.url.startswith(JSON_PREFIX)
        self.url = settings.url[len(JSON_PREFIX):] if self.as_json else settings.url
        self._secrets = [s for s in secrets if len(s) >= 4]
        self._clock = clock
        self._sleep = sleep
        self._queue: "queue.Queue[Optional[Message]]" = queue.Queue(maxsize=100)
        self._last_sent: Dict[str, float] = {}
        self._sent_times: List[float] = []
        self._lock = threading.Lock()
        self._failing = False
        self._dropped_logged = False
        self._thread: Optional[threading.Thread] = None
        self.delivered = 0

    # -- producers (any thread; never blocks)

    def notify(self, event: str, title: str, text: str, *, key: Optional[str] = None) -> bool:
        """Queue a message unless a limit holds it back; True if queued."""
        if not self.enabled or not self._admit(key or f"{event}:{title}"):
            return False
        message = Message(event, self._mask(title), self._mask(text),
                          datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._start()
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            if not self._dropped_logged:
                logger.warning("notification queue full: dropping notifications until the receiver catches up")
                self._dropped_logged = True
            return False
        return True

    def forget(self, key: str) -> None:
        """Let ``key`` be sent again at once (e.g. a state that cleared and may come back)."""
        with self._lock:
            self._last_sent.pop(key, None)

    def _admit(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last_sent.get(key)
            if last is not None and now - last < self.settings.repeat_seconds:
                return False
            self._sent_times = [t for t in self._sent_times if now - t < 3600]
            if len(self._sent_times) >= self.settings.max_per_hour:
                return False
            self._sent_times.append(now)
            self._last_sent[key] = now
            return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- the sending thread

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            try:
                if message is not None:
                    self._deliver(message)
            finally:
                self._queue.task_done()

    def _deliver(self, message: Message) -> None:
        for attempt in range(self.settings.retries + 1):
            error = self._post(message)
            if error is None:
                self.delivered += 1
                if self._failing:
                    logger.info("notifications are delivered again")
                    self._failing = False
                return
            if attempt < self.settings.retries:
                self._sleep(min(30.0, 2.0 ** attempt))
        if not self._failing:
            logger.warning("notification not delivered (%s); further failures are not logged until one succeeds", error)
            self._failing = True

    def _post(self, message: Message) -> Optional[str]:
        if self.as_json:
            body = json.dumps({"event": message.event, "title": message.title, "text": message.text,
                               "time": message.time}).encode()
            headers = {"Content-Type": "application/json"}
        else:
            body = message.text.encode()
            headers = {"Content-Type": "text/plain; charset=utf-8", "Title": message.title.encode("ascii", "replace").decode()}
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                response.read(1024)
            return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return type(reason).__name__ if not isinstance(reason, str) else reason

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued messages to go (at shutdown); True if all went."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._queue.unfinished_tasks


_DISABLED = Notifier(NotifySettings())


def from_settings(settings: Settings) -> Notifier:
    """A notifier for ``NOTIFY_URL`` (a disabled one when it is empty) masking the broker keys."""
    if not settings.notify.url:
        return _DISABLED
    return Notifier(settings.notify, secrets=settings.secrets)

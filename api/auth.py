"""PIN check, short-lived bearer tokens and the persistent lock-out after repeated wrong PINs.

``POST /api/validate-pin`` with an ``action`` trades the PIN for a random token kept only in this
process (a restart logs everyone out, which is harmless: tokens live minutes); without one it is
the spec's "check PIN" and answers ``{"valid": true|false}``, no token. A token is minted for one
protected action (``add`` a card, ``stop`` a card, ``deposit`` into or ``withdraw`` from a card, ``export`` the
ledger, ``pause`` or ``resume`` trading or a card, change a card's ``limits``): the PIN entered to add a card
cannot stop one, nor the PIN entered to deposit withdraw, so a wall left alone after an add holds no token that
could sell or take anything. Every mutating
endpoint is wrapped in ``require_token(action)``. Wrong PINs are counted in system.db (``system_config`` key
``pin_lockout``), so restarting the server does not reset a lock-out; each lock-out lasts twice
as long as the previous one until a correct PIN is entered; checks without an action count too.
The PIN itself is never stored: system.db holds a salted scrypt hash (``system_databse.pin_hash``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable, Optional

from flask import Blueprint, current_app, jsonify, request

from api import db
from api.errors import ApiError
from api.inputs import refuse_unknown_fields
from api.json_body import json_object
from database import market_calendar
from system_databse import pin_hash, system_db_manager

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

LOCKOUT_KEY = "pin_lockout"
ACTIONS = ("add", "stop", "deposit", "withdraw", "export", "pause", "resume", "limits")  # the flows a token serves
REFUSED_WHEN_LIVE = {"add": "cards cannot be added", "stop": "cards cannot be stopped",
                     "deposit": "money cannot be deposited into a card", "withdraw": "money cannot be withdrawn from a card",
                     "resume": "trading cannot be resumed", "limits": "limits cannot be changed"}
# not refused with live keys and the default PIN: export (it reads) and pause (it only stops trading)
PIN_SHAPE = re.compile(r"[0-9]{4,8}")
PIN_COMMAND = ".venv/bin/python -m api.pin set-pin"


class TokenStore:
    """Issued tokens (stored only as SHA-256 digests) with their action and expiry time."""

    def __init__(self, ttl_seconds: float, now: Callable[[], datetime]):
        self.ttl_seconds = ttl_seconds
        self._now = now
        self._issued: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def issue(self, action: str) -> str:
        token = secrets.token_urlsafe(32)
        now = self._now()
        with self._lock:
            self._issued = {d: (a, t) for d, (a, t) in self._issued.items() if t > now}
            self._issued[self._digest(token)] = (action, now + timedelta(seconds=self.ttl_seconds))
        return token

    def action_of(self, token: str) -> Optional[str]:
        """The action an unexpired token was minted for, or None."""
        with self._lock:
            issued = self._issued.get(self._digest(token))
        if issued is None or self._now() >= issued[1]:
            return None
        return issued[0]


@dataclass
class LockoutState:
    """Wrong PINs since the last lock-out, lock-outs since the last correct PIN, and until when."""

    failures: int = 0
    lockouts: int = 0
    locked_until: Optional[str] = None

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> "LockoutState":
        raw = system_db_manager.get_config(LOCKOUT_KEY, conn=conn)
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(int(data.get("failures", 0)), int(data.get("lockouts", 0)), data.get("locked_until"))
        except (ValueError, TypeError, AttributeError):
            logger.warning("unreadable %s in system_config; starting a fresh count", LOCKOUT_KEY)
            return cls()

    def save(self, conn: sqlite3.Connection) -> None:
        system_db_manager.set_config(LOCKOUT_KEY, json.dumps(asdict(self), sort_keys=True), conn=conn)

    def seconds_left(self, now: datetime) -> int:
        if not self.locked_until:
            return 0
        try:
            until = market_calendar.utc_datetime(self.locked_until)
        except (TypeError, ValueError):
            return 0
        return max(0, math.ceil((until - now).total_seconds()))


def reset_lockout(conn: sqlite3.Connection) -> None:
    """Forget wrong PINs and lock-outs (used by the PIN CLI)."""
    LockoutState().save(conn)


def _lockout_seconds(lockouts: int) -> int:
    base = current_app.config["PIN_LOCKOUT_SECONDS"]
    return int(min(base * 2 ** (lockouts - 1), current_app.config["PIN_LOCKOUT_MAX_SECONDS"]))


def _too_many(seconds: int) -> ApiError:
    return ApiError(429, f"too many wrong PINs; try again in {seconds} seconds", valid=False,
                    retry_after=seconds, headers={"Retry-After": str(seconds)})


def _stored_pin(conn: sqlite3.Connection) -> str:
    try:
        return system_db_manager.get_pin(conn=conn)
    except system_db_manager.LedgerError as exc:  # no PIN, or a ledger not yet upgraded
        raise ApiError(503, str(exc)) from None


def _refuse_while_locked(conn: sqlite3.Connection, now: datetime) -> LockoutState:
    state = LockoutState.load(conn)
    locked_for = state.seconds_left(now)
    if locked_for > 0:
        raise _too_many(locked_for)
    return state


def _check_pin(pin: str, now: datetime) -> tuple[bool, LockoutState]:
    """Compare the PIN with the stored hash and count the answer toward the lock-out.

    A locked pad is refused before any hashing. The hash (tens of milliseconds) is computed
    outside the write lock, so the orchestrator's writes never wait for it; the count is then
    updated in one write transaction that looks at the lock-out again, so guesses sent at once
    are still counted one by one.
    """
    conn = db.system_writer()
    _refuse_while_locked(conn, now)
    record = _stored_pin(conn)
    valid = pin_hash.verify_pin(pin, record)  # hmac.compare_digest inside
    with system_db_manager.atomic(conn):
        state = _refuse_while_locked(conn, now)
        current = _stored_pin(conn)
        if current != record:  # set-pin ran meanwhile: judge against the new PIN
            valid = pin_hash.verify_pin(pin, current)
        if valid:
            if state != LockoutState():
                state = LockoutState()
                state.save(conn)
            return True, state
        state.failures += 1
        state.locked_until = None
        if state.failures >= current_app.config["PIN_MAX_ATTEMPTS"]:
            state.lockouts += 1
            state.failures = 0
            state.locked_until = market_calendar.to_utc_string(now + timedelta(seconds=_lockout_seconds(state.lockouts)))
            logger.warning("PIN locked after %d wrong attempts (lock-out #%d)",
                           current_app.config["PIN_MAX_ATTEMPTS"], state.lockouts)
        state.save(conn)
        return False, state


def _wrong_pin_figures(state: LockoutState, now: datetime) -> dict:
    locked_for = state.seconds_left(now)
    if locked_for:
        return {"attempts_left": 0, "retry_after": locked_for}
    return {"attempts_left": current_app.config["PIN_MAX_ATTEMPTS"] - state.failures}


@bp.post("/api/validate-pin")
def validate_pin():
    body = json_object()
    refuse_unknown_fields(body, ("pin", "action"))
    pin = body.get("pin")
    if not isinstance(pin, str) or not PIN_SHAPE.fullmatch(pin):
        raise ApiError(400, "pin must be a string of 4 to 8 digits (0-9)", field="pin")
    action = body.get("action")
    if "action" in body and action not in ACTIONS:
        raise ApiError(400, f"action must be one of: {', '.join(ACTIONS)} (the token serves that action only), "
                            "or left out to check the PIN only", field="action")
    now = current_app.config["NOW"]()
    valid, state = _check_pin(pin, now)
    if "action" not in body:  # the spec's "check PIN": an answer, never a token
        return jsonify({"valid": True} if valid else {"valid": False, **_wrong_pin_figures(state, now)})
    if valid:
        tokens: TokenStore = current_app.extensions["autotrader_tokens"]
        return jsonify({"valid": True, "token": tokens.issue(action), "action": action,
                        "expires_in": int(tokens.ttl_seconds)})
    figures = _wrong_pin_figures(state, now)
    if "retry_after" in figures:
        return jsonify({"valid": False, "error": f"wrong PIN; locked for {figures['retry_after']} seconds",
                        **figures}), 401
    return jsonify({"valid": False, "error": "wrong PIN", **figures}), 401


def refuse_default_pin_when_live(action: str) -> None:
    """Live money is not guarded by the PIN everybody knows from the README: 403 until it is changed."""
    if action not in REFUSED_WHEN_LIVE or not current_app.config["LIVE_TRADING"]:
        return
    try:  # the hash of "2020" cannot be compared as text: check "2020" against the stored hash
        default = system_db_manager.pin_is_default(conn=db.system_reader())
    except system_db_manager.LedgerError:
        default = False  # no PIN at all: validate-pin already refuses every token
    if default:
        raise ApiError(403, f"live trading: {REFUSED_WHEN_LIVE[action]} while the PIN is still the default; "
                            f"change it first with: {PIN_COMMAND}")


def require_token(action: str):
    """Decorator: 401 unless ``Authorization: Bearer <token>`` holds an unexpired token minted for ``action``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown protected action {action!r}; add it to api.auth.ACTIONS")

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            tokens: TokenStore = current_app.extensions["autotrader_tokens"]
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, f"this action needs a PIN token: POST /api/validate-pin with action "
                                    f"{action!r}, then send 'Authorization: Bearer <token>'",
                               headers={"WWW-Authenticate": "Bearer"})
            minted_for = tokens.action_of(token.strip())
            if minted_for is None:
                raise ApiError(401, "the PIN token is invalid or expired; enter the PIN again",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if minted_for != action:
                raise ApiError(401, f"this PIN token was given for {minted_for!r}, not for {action!r}; "
                                    "enter the PIN again", headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
            refuse_default_pin_when_live(action)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def init_app(app) -> None:
    app.extensions["autotrader_tokens"] = TokenStore(app.config["TOKEN_TTL_SECONDS"], app.config["NOW"])
    app.register_blueprint(bp)

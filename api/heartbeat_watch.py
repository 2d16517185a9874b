"""The API notices when the orchestrator's heartbeat goes quiet, and says so once (``NOTIFY_URL``).

Checked on every ``/api/health`` request (the wall asks every poll), against the same threshold
the health answer uses; a heartbeat that never existed (a fresh install) is not news. When the
heartbeat comes back, that is reported too and the next silence is reported again.
"""
from __future__ import annotations

import threading
from typing import Any, Optional


class HeartbeatWatch:
    def __init__(self, notifier: Any):
        self.notifier = notifier
        self._quiet = False
        self._lock = threading.Lock()

    def observe(self, alive: bool, heartbeat_at: Optional[str], age_seconds: Optional[int]) -> None:
        if heartbeat_at is None or not getattr(self.notifier, "enabled", False):
            return
        with self._lock:
            if not alive and not self._quiet:
                self._quiet = True
                self.notifier.notify("heartbeat", "orchestrator quiet",
                                     f"the orchestrator has not reported for {age_seconds} s (last at {heartbeat_at}); "
                                     "it may be down", key="heartbeat:quiet")
            elif alive and self._quiet:
                self._quiet = False
                self.notifier.forget("heartbeat:quiet")
                self.notifier.notify("heartbeat", "orchestrator back", f"the orchestrator reports again ({heartbeat_at})",
                                     key=f"heartbeat:back:{heartbeat_at}")

"""Files only their owner may read: the keys (``.env``), the ledger (``system.db`` with its
``-wal``/``-shm``), the paper exchange's state file and the logs.

On a multi-user Pi the default umask (022) leaves new files readable by everyone. Each entry
point calls ``restrict_new_files()`` first, so whatever the process (and its children) creates is
0600 (folders 0700); ``exposed()`` names the files that are still open to others, for the
start-up warning and ``./scripts/status``.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Iterable

from shared.config import REPO_ROOT, Settings

logger = logging.getLogger(__name__)

OWNER_ONLY_UMASK = 0o077


def restrict_new_files() -> None:
    """Files this process creates from now on are 0600 and folders 0700 (inherited by children)."""
    os.umask(OWNER_ONLY_UMASK)


def with_sqlite_companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def private_paths(settings: Settings, extra: Iterable[Path] = ()) -> list[Path]:
    """Everything that must stay owner-only: .env, system.db (+ -wal/-shm), the logs folder and its files."""
    logs = settings.logs.directory
    paths = [REPO_ROOT / ".env", *with_sqlite_companions(settings.databases.system_db), logs]
    for path in extra:
        paths += with_sqlite_companions(Path(path))
    if logs.is_dir():
        paths += sorted(p for p in logs.iterdir() if p.is_file())
    return paths


def exposed(paths: Iterable[Path]) -> list[str]:
    """One line per existing path that the group or others may read, write or enter, with the fix."""
    problems = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            fix = "chmod 700" if path.is_dir() else "chmod 600"
            problems.append(f"{path} is open to other users (mode {mode:04o}); run: {fix} {path}")
    return problems


def warn_if_exposed(paths: Iterable[Path]) -> list[str]:
    """Log a warning per exposed path (never their contents); returns the lines."""
    problems = exposed(paths)
    for line in problems:
        logger.warning("secret file readable by others: %s", line)
    return problems

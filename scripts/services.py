"""Install or remove AutoTrader's systemd user services (API, orchestrator, kiosk, exchange).

Usage:
    python -m scripts.services install [--dest DIR] [--no-enable]
    python -m scripts.services uninstall [--dest DIR] [--no-enable]

Units are rendered from scripts/systemd/*.service with this checkout's path and the dashboard
URL from the settings, into ~/.config/systemd/user/ by default. The paper exchange's unit is
installed only while RUN_PAPER_EXCHANGE is true, and then the orchestrator and the API follow its
simulated clock (``AUTOTRADER_CLOCK=broker`` in their units, whatever .env says).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from shared.config import REPO_ROOT, ConfigError, Settings, load_env

TEMPLATES = REPO_ROOT / "scripts" / "systemd"
DEFAULT_DEST = Path.home() / ".config" / "systemd" / "user"
EXCHANGE_UNIT = "autotrader-exchange.service"
CLOCK_UNITS = ("autotrader-orchestrator.service", "autotrader-api.service")  # they stamp the ledger
TRADING_CLOCK_WITH_THE_EXCHANGE = {"AUTOTRADER_CLOCK": "broker"}


def trading_clock_env(settings: Settings) -> dict[str, str]:
    """The local paper exchange's simulated clock is the trading clock of every process that uses it
    (a card stamped by the computer's clock would lie outside the exchange's sessions)."""
    return dict(TRADING_CLOCK_WITH_THE_EXCHANGE) if settings.exchange.run else {}


def wanted_units(settings: Settings) -> list[Path]:
    """Every unit, the paper exchange's only while RUN_PAPER_EXCHANGE is true."""
    units = sorted(TEMPLATES.glob("*.service"))
    return [u for u in units if u.name != EXCHANGE_UNIT or settings.exchange.run]


def render_units(dest: Path, settings: Settings, repo: Path = REPO_ROOT) -> list[Path]:
    """Write the units for this checkout into ``dest``; returns the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    clock = "".join(f"Environment={k}={v}\n" for k, v in trading_clock_env(settings).items())
    for template in wanted_units(settings):
        text = (template.read_text().replace("@REPO@", str(repo))
                .replace("@DASHBOARD_URL@", settings.api.dashboard_url))
        if template.name in CLOCK_UNITS:
            text = text.replace("[Service]\n", "[Service]\n" + clock, 1)
        target = dest / template.name
        target.write_text(text)
        written.append(target)
    return written


def _systemctl(*args: str) -> None:
    if shutil.which("systemctl") is None:
        raise RuntimeError("systemctl not found: is this a systemd system?")
    subprocess.run(["systemctl", "--user", *args], check=True)


def install(dest: Path, enable: bool, settings: Settings) -> None:
    written = render_units(dest, settings)
    for path in written:
        print(f"wrote {path}")
    if enable:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", *(p.name for p in written))
        if shutil.which("loginctl"):
            subprocess.run(["loginctl", "enable-linger", os.environ.get("USER", "")], check=False)
        print("enabled; they start at boot (lingering user session). Check with ./scripts/status")


def uninstall(dest: Path, enable: bool) -> None:
    present = [dest / t.name for t in sorted(TEMPLATES.glob("*.service")) if (dest / t.name).exists()]
    if enable and present:
        _systemctl("disable", "--now", *(p.name for p in present))
    for path in present:
        path.unlink()
        print(f"removed {path}")
    if enable and present:
        _systemctl("daemon-reload")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="unit directory (default: %(default)s)")
    parser.add_argument("--no-enable", action="store_true", help="only write/remove files; do not call systemctl")
    args = parser.parse_args(argv)
    load_env()
    try:
        if args.action == "install":
            install(args.dest, not args.no_enable, Settings.from_env(os.environ))
        else:
            uninstall(args.dest, not args.no_enable)
    except (ConfigError, RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

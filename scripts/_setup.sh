# Shared set-up steps for ./scripts/start and ./scripts/test (sourced, not run).
# Idempotent: a second run only checks that everything is already in place.

PYTHON="${PYTHON:-python3}"
VENV=".venv"

die() { echo "error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "'$*' needs root (install sudo or run as root)"; fi
}

ensure_venv() {
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null \
        || die "Python 3.11 or newer is needed as '$PYTHON' (set PYTHON=/path/to/python3.11)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating virtual environment in $VENV"
        "$PYTHON" -m venv "$VENV" || die "could not create $VENV (on Debian: apt-get install python3-venv)"
    fi
}

# pip_install FILE...: install requirement files once per content change.
pip_install() {
    local stamp="$VENV/.installed-$(cat "$@" | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "==> installing $*"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q $(printf -- '-r %s ' "$@") \
            || die "pip install of $* failed"
        touch "$stamp"
    fi
}

ensure_databases() {
    "$VENV/bin/python" -m system_databse.create_system_db >/dev/null || die "could not create system.db"
    "$VENV/bin/python" -m database.create_stocks_db >/dev/null || die "could not create stocks.db"
}

ensure_env_file() {
    if [ ! -f .env ]; then
        cp .env.example .env
        echo "==> wrote .env from .env.example (local paper exchange, no keys needed)"
    fi
}

ensure_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        echo "==> installing Debian's chromium for the browser tests"
        as_root apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null \
            || die "apt-get install chromium failed"
    fi
}

#!/usr/bin/env bash
# Install what `make run` and `make test` need on a fresh Debian/Ubuntu machine:
# system packages (through apt-get when root, else the exact command to run), then the
# virtualenv with the locked Python dependencies. Idempotent: does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
# System packages the service and its tests use.
# bubblewrap and libseccomp2 are the sandbox; without them no code runs. gcc (with the C
# library's headers) also builds the sandbox launcher.
# nodejs and npm build the web app (web/); chromium and chromium-driver run its browser
# tests (Playwright drives the system chromium; no browser is downloaded). curl and jq run
# docs/API.md's examples (`make test-contract`).
APT_PACKAGES=(python3 python3-venv python3-dev gcc bubblewrap libseccomp2 nodejs npm chromium
  chromium-driver curl jq)

missing=()
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3 python3-venv)
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi
command -v gcc >/dev/null 2>&1 || missing+=(gcc python3-dev)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "bootstrap: missing system packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${APT_PACKAGES[*]}" >&2
    exit 1
  fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python 3.11 or newer is required ($PYTHON is $("$PYTHON" --version))" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c constraints.txt -e '.[dev]'
# The stock Yjs clients and the reference y-websocket server that tests/live and
# bench/live.py run, exactly as locked.
if command -v npm >/dev/null 2>&1; then
  (cd tests/support/node && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "bootstrap: npm not found; tests/live/test_stock_client.py and bench/live.py need it" >&2
fi
# The sandbox launcher is a small C program (see src/coderoom/sandbox/launcher.c).
"$VENV/bin/python" -c "from coderoom.sandbox.launcher import ensure_built; ensure_built()"
# The web app's locked npm dependencies (the build itself is `make web`).
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
echo "bootstrap: ready"

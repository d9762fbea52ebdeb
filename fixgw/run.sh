#!/usr/bin/env bash
# The one entry point a new user needs: sets up everything, then runs fixgw.
#   bash fixgw/run.sh up      start the whole system on configs/local.toml
#   bash fixgw/run.sh test    run the test suite
#   bash fixgw/run.sh ARGS    any other fixgw command (fixgw ARGS)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="$here/.venv"
py="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  # Debian packages we need; installs only when root (or password-less sudo) is available.
  if ! command -v apt-get >/dev/null 2>&1; then return 1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "fixgw needs Python >= 3.11 (found: $("$py" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv || { echo "python3 -m venv failed and python3-venv cannot be installed (not root): install python3-venv." >&2; exit 1; }
    "$py" -m venv "$venv"
  fi
fi

cmd="${1:-up}"
[ $# -gt 0 ] && shift

# What a command needs: running (`up`, `node`, `order`, ...) only the runtime packages
# (`pip install -e .`, seconds: every dependency is a wheel); the tests also the test
# extras (`.[test]`), whose QuickFIX engine compiles from source for about 5 minutes.
# The stamp records the pyproject.toml it was made from and which set is installed:
# a runtime-only .venv gets the test extras the first time `test` runs, and a .venv that
# has them serves `up` as it is.
stamp="$venv/.fixgw-installed"
digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$cmd" = test ]; then
  want="$digest-test"; spec=".[test]"
  note="fixgw: installing Python packages and the test extras into .venv (the QuickFIX engine compiles once, about 5 minutes)..."
else
  want="$digest-runtime"; spec="."
  note="fixgw: installing Python packages into .venv..."
fi
if [ "$have" != "$want" ] && [ "$have" != "$digest-test" ]; then
  echo "$note" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e "$spec"
  echo "$want" > "$stamp"
fi

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  if apt_install mosquitto; then
    # Debian starts a system-wide broker on 1883; we run our own, so stop it.
    as_root systemctl disable --now mosquitto >/dev/null 2>&1 || as_root service mosquitto stop >/dev/null 2>&1 || true
  else
    echo "fixgw: mosquitto is not installed and cannot be installed here (not root)." >&2
    if [ "$cmd" = test ]; then
      echo "fixgw: the integration tests need a real broker: run 'sudo apt-get install mosquitto'." >&2
      exit 1
    fi
    echo "fixgw: 'up' will use the embedded amqtt broker instead." >&2
  fi
fi

# openssl makes the local CA and the broker's certificate for [broker] tls = true (and the
# tests of TLS); Debian ships it nearly everywhere
if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl || echo "fixgw: openssl is missing: [broker] tls = true and its tests need it." >&2
fi

case "$cmd" in
  test)
    # the dashboard's test drives a real headless browser (Debian's chromium)
    if ! command -v chromium >/dev/null 2>&1; then
      apt_install chromium || echo "fixgw: chromium cannot be installed here (not root): the dashboard test will try again." >&2
    fi
    # two workers (pytest-xdist) by default; FIXGW_TEST_WORKERS=0 runs in this process alone
    exec "$venv/bin/python" -m pytest -n "${FIXGW_TEST_WORKERS:-2}" "$@" ;;
  *)
    exec "$venv/bin/fixgw" "$cmd" "$@" ;;
esac

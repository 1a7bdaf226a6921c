#!/usr/bin/env bash
# Installs what Dailies needs on a fresh Debian/Ubuntu machine: Debian packages (when run as
# root and missing) and a virtual environment in .venv with the Python requirements.
#   scripts/setup.sh            the app (requirements.txt)
#   scripts/setup.sh test       the app and the test tools (requirements-test.txt, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want=(redis-server)
[ "${1:-}" = test ] && want+=(chromium)
missing=()
for pkg in "${want[@]}"; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Please install these Debian packages first: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = test ]; then
  .venv/bin/python -m pip install -q -r requirements-test.txt
else
  .venv/bin/python -m pip install -q -r requirements.txt
fi

#!/usr/bin/env bash
# Installs everything the test suite needs: services, Debian's Chromium (never a downloaded browser)
# and the npm packages from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian's chromium"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
npm ci --no-audit --no-fund

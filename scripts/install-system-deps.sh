#!/usr/bin/env bash
# Debian packages the test suite uses: headless Chromium and its driver for the dashboard's browser test.
# Without root (or without apt) the browser test skips and says why; CI runs as root and installs them.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${missing[*]} not installed and no root apt-get here; browser tests will skip" >&2
    exit 0
fi
echo "installing ${missing[*]} (Debian packages) for the browser tests"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

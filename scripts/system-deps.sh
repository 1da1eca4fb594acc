#!/bin/sh
# System packages the test suite needs (Debian): installs the missing ones when run as root,
# otherwise names them and exits 0 so that tests needing them skip with the same message.
#   chromium, chromium-driver: the status pages' browser tests (tests/status/test_pages_browser.py)
# Usage: scripts/system-deps.sh [PACKAGE ...]   (default: every package below)
set -eu

PACKAGES=${*:-"chromium chromium-driver"}

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing Debian packages:$missing" >&2
    echo "system-deps: install them with: sudo apt-get install -y$missing (tests that need them skip)" >&2
    exit 0
fi
echo "system-deps: installing$missing" >&2
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing

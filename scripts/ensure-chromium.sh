#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on PATH for tests/python/test_report_render.py
# (it opens the HTML of `msms quality-report` and checks it renders without console errors).
# Order: `chromium`, `chromium-browser` or `google-chrome` already on PATH; else the Debian
# package `chromium` via apt-get (as root). Idempotent, prints one line, and never fails the
# calling script: without a browser the render test skips and says why.
#
#   bash scripts/ensure-chromium.sh
set -uo pipefail

found() {
    local b
    for b in chromium chromium-browser google-chrome; do
        if command -v "$b" >/dev/null 2>&1; then
            echo "$(command -v "$b")"
            return 0
        fi
    done
    return 1
}

version() { "$1" --version 2>/dev/null | head -n1; }

if bin="$(found)"; then
    echo "ensure-chromium: $bin is there ($(version "$bin")); nothing to do"
    exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    if { apt-get update -qq && apt-get install -y -qq chromium; } >"$log" 2>&1 && bin="$(found)"; then
        echo "ensure-chromium: installed $bin ($(version "$bin")) with apt-get"
        exit 0
    fi
    echo "ensure-chromium: 'apt-get install chromium' failed (last lines: $(tail -n 3 "$log" | tr '\n' ' ')); the render test will skip"
    exit 0
fi
echo "ensure-chromium: no chromium, chromium-browser or google-chrome on PATH and not root with apt-get; install one to run the render test (it skips otherwise)"
exit 0

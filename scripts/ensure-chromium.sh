#!/usr/bin/env bash
# Make sure a headless-capable Chromium is on PATH for tests/python/test_report_render.py
# (it opens the HTML of `msms quality-report` and checks it renders without console errors).
# Order: `chromium`, `chromium-browser` or `google-chrome` already on PATH; else the Debian
# package `chromium` via apt-get (as root). Idempotent and prints one line. Outside CI it never
# fails the calling script: without a browser the render tests skip and say why. With `CI` set
# (anything but empty, 0, false or no) a missing browser is an error (exit 1): CI must not
# skip the render tests (tests/python/conftest.py fails them too).
#
#   bash scripts/ensure-chromium.sh
set -uo pipefail

in_ci() {
    case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
        "" | 0 | false | no) return 1 ;;
        *) return 0 ;;
    esac
}

# Say why there is no browser; under CI that is a failure, elsewhere the render tests skip.
missing() {
    if in_ci; then
        echo "ensure-chromium: $1; CI=$CI forbids skipping the render tests (tests/python/test_report_render.py)" >&2
        exit 1
    fi
    echo "ensure-chromium: $1; the render tests (tests/python/test_report_render.py) will skip"
    exit 0
}

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
    if { apt-get update -qq && apt-get install -y -qq chromium; } >"$log" 2>&1; then
        if bin="$(found)"; then
            echo "ensure-chromium: installed $bin ($(version "$bin")) with apt-get"
            exit 0
        fi
        missing "'apt-get install chromium' succeeded but no chromium, chromium-browser or google-chrome is on PATH ($PATH)"
    fi
    missing "'apt-get install chromium' failed (last lines: $(tail -n 3 "$log" | tr '\n' ' '))"
fi
missing "no chromium, chromium-browser or google-chrome on PATH and not root with apt-get; install one to run the render tests"

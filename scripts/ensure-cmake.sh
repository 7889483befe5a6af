#!/usr/bin/env bash
# Make sure CMake >= 3.18 is on PATH: the bundled static HDF5 (hdf5-metno-src) is built with it.
# Order: already there; apt-get (as root); pip --user; else say what to install.
# Source this file (`. scripts/ensure-cmake.sh`) so that a pip-installed cmake lands on PATH.
ensure_cmake() {
  local have
  if command -v cmake >/dev/null 2>&1; then
    have=$(cmake --version | awk 'NR==1 {print $3}')
    if printf '3.18\n%s\n' "$have" | sort -V -C; then return 0; fi
    echo "ensure-cmake: cmake $have is older than 3.18; installing a newer one" >&2
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-cmake: installing cmake with apt-get" >&2
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake) >/dev/null 2>&1 \
      && command -v cmake >/dev/null 2>&1 \
      && printf '3.18\n%s\n' "$(cmake --version | awk 'NR==1 {print $3}')" | sort -V -C; then
      return 0
    fi
  fi
  if command -v python3 >/dev/null 2>&1; then
    echo "ensure-cmake: installing cmake with pip --user" >&2
    if python3 -m pip install --user --quiet 'cmake>=3.18' >/dev/null 2>&1; then
      export PATH="$(python3 -m site --user-base)/bin:$PATH"
      command -v cmake >/dev/null 2>&1 && return 0
    fi
  fi
  echo "ensure-cmake: CMake >= 3.18 is needed to build the bundled HDF5; install it (e.g. 'apt-get install cmake' or 'pip install cmake') and retry" >&2
  return 1
}
ensure_cmake

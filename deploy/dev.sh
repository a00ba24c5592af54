#!/usr/bin/env bash
# The two set-up commands of README.md, in one place:
#   bash deploy/dev.sh run    install what is missing, build Release, run one gateway node (127.0.0.1:8080, token auth)
#   bash deploy/dev.sh test   install what is missing, build, run every test through ctest
# Works on a fresh Debian 12 machine as root; .ci/run calls the test command.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
jobs=${SWITCHBOARD_JOBS:-2}

debian_packages=(
  build-essential cmake pkg-config
  libcaf-dev libboost-dev nlohmann-json3-dev libssl-dev openssl
  catch2 libspdlog-dev libcli11-dev libssh2-1-dev
  openssh-client openssh-server
)

install_missing() {
  local missing=()
  for p in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js runs the interop tests; any install of it will do (the distribution's or one already present).
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Packages with services (openssh-server) must not start them: tests run their own sshd on a test port.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi
  fi
}

# Builds the given targets (all of them when none is given).
build_tree() {
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
  if (($#)); then
    cmake --build "$build" -j "$jobs" --target "$@"
  else
    cmake --build "$build" -j "$jobs"
  fi
}

case "${1:-}" in
  run)
    install_missing
    build_tree switchboard
    shift
    exec "$build/switchboard" serve "$@"
    ;;
  test)
    install_missing
    (cd "$root/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
    build_tree
    cd "$build"
    exec ctest --output-on-failure -j "$jobs" --timeout 300
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac

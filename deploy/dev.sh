#!/usr/bin/env bash
# The set-up commands of README.md, in one place:
#   bash deploy/dev.sh run    install what is missing, build Release, run one gateway node (127.0.0.1:8080, token auth)
#   bash deploy/dev.sh test   install what is missing, then three trees, each built and run through ctest:
#                               build/       Release: every test
#                               build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: every test again
#                               build-fuzz/  clang++-14 libFuzzer targets: a short run of each (tests/fuzz)
#   bash deploy/dev.sh build  install what is missing, build the Release binary (what deploy/cluster.sh needs)
#   bash deploy/dev.sh asan [ctest args]   the ASan+UBSan tree alone (build-asan/)
#   bash deploy/dev.sh tsan   ThreadSanitizer tree (build-tsan/): tunnel units, actor tests, cluster tests, actor and tunnel integration tests
#   bash deploy/dev.sh fuzz [cpu-seconds-per-target] [target...]   long fuzzing runs (tests/fuzz/run-long)
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
  nats-server libnats-dev haproxy
  clang-14 libclang-rt-14-dev
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
    # Packages with services (openssh-server, nats-server, haproxy) must not start them: tests run their own sshd on a test port.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi
  fi
}

# ccache, when installed, makes rebuilds of unchanged sources (and of the sanitizer trees) nearly free.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
fi

# configure_tree DIR CMAKE-ARGS...: configures one build tree.
configure_tree() {
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "${launcher[@]}" "$@" >/dev/null
}

# Builds the given targets of the Release tree (all of them when none is given).
build_tree() {
  configure_tree "$build" -DCMAKE_BUILD_TYPE=Release
  if (($#)); then
    cmake --build "$build" -j "$jobs" --target "$@"
  else
    cmake --build "$build" -j "$jobs"
  fi
}

# Sanitizer trees: -O1 keeps them fast enough for the integration tests; -g1 gives file:line in reports.
sanitizer_args=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1")
# Every sanitizer finding fails the test that triggered it. Leaks are findings too, except the ones listed
# (with the reason) in tests/sanitizers/lsan.supp; UBSan reports inside CAF headers in tests/sanitizers/ubsan.supp.
# A binary the tests start that leaks exits with code 23, which fails its test.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/sanitizers/ubsan.supp"
export LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=7:suppressions=$root/tests/sanitizers/tsan.supp"

build_asan() {
  configure_tree "$root/build-asan" "${sanitizer_args[@]}" -DSWITCHBOARD_SANITIZERS=address,undefined
  cmake --build "$root/build-asan" -j "$jobs"
}

build_fuzz() {
  configure_tree "$root/build-fuzz" -DSWITCHBOARD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$root/build-fuzz" -j "$jobs"
}

# run_ctest DIR ARGS...: runs one tree's tests; remembers a failure instead of stopping, so one failing tree
# does not hide the others' results.
failed_trees=()
run_ctest() {
  local dir=$1
  shift
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300 "$@") || failed_trees+=("${dir##*/}")
}

case "${1:-}" in
  run)
    install_missing
    build_tree switchboard
    shift
    exec "$build/switchboard" serve "$@"
    ;;
  test)
    start=$SECONDS
    install_missing
    (cd "$root/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
    build_tree
    run_ctest "$build"
    echo "release tree done after $((SECONDS - start)) s"
    build_asan
    run_ctest "$root/build-asan"
    echo "asan tree done after $((SECONDS - start)) s"
    build_fuzz
    # The fuzz smoke runs are CPU-bound, each for SWITCHBOARD_FUZZ_SECONDS: one per core.
    (cd "$root/build-fuzz" && ctest --output-on-failure -j "$jobs" --timeout 300) || failed_trees+=(build-fuzz)
    echo "all trees done after $((SECONDS - start)) s"
    if ((${#failed_trees[@]})); then
      echo "FAILED in: ${failed_trees[*]}" >&2
      exit 1
    fi
    ;;
  asan)
    # The ASan+UBSan tree alone, as `test` runs it; extra arguments go to ctest (e.g. -R relay).
    install_missing
    build_asan
    shift
    run_ctest "$root/build-asan" "$@"
    if ((${#failed_trees[@]})); then exit 1; fi
    ;;
  build)
    # What deploy/cluster.sh needs: the packages (nats-server, haproxy among them) and the Release binary.
    install_missing
    build_tree switchboard
    ;;
  tsan)
    install_missing
    configure_tree "$root/build-tsan" "${sanitizer_args[@]}" -DSWITCHBOARD_SANITIZERS=thread
    cmake --build "$root/build-tsan" -j "$jobs" --target switchboard tunnel_tests actor_tests integration_tests cluster_tests
    shift
    # The tunnel core, the actors on CAF's test coordinator, then the actor and tunnel integration tests:
    # sessions and agents through real gateways, relay/host/client in one process, the CLIs against each other.
    # Extra arguments replace that Catch filter, e.g. "[relay]". Left out by default: the official SDK through a
    # wss relay ([sdk]), whose Node steps give up after 20 s while a TSan-built relay and host are that slow.
    "$root/build-tsan/tests/tunnel_tests"
    "$root/build-tsan/tests/actor_tests"
    # The cluster: bus contract tests, nodes on one NATS in this process, the node processes behind HAProxy.
    "$root/build-tsan/tests/cluster_tests"
    default_filter="[#session_test],[#agent_test],[#tunnel_test],[#tunnel_supervisor_test],[#tunnel_faults_test],[#tunnel_cli_test],[#relay_hostile_test],[#relay_store_test],[#relay_admin_test],[#relay_tls_test]~[sdk]"
    if (($#)); then
      exec "$root/build-tsan/tests/integration_tests" "$@"
    fi
    exec "$root/build-tsan/tests/integration_tests" -# --warn NoTests "$default_filter"
    ;;
  fuzz)
    install_missing
    build_fuzz
    shift
    exec "$root/tests/fuzz/run-long" "$@"
    ;;
  *)
    echo "usage: $0 run|test|build|asan|tsan|fuzz" >&2
    exit 2
    ;;
esac

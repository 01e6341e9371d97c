#!/usr/bin/env bash
# The README's two commands on a fresh Debian bookworm machine:
#   deploy/dev.sh up     install what is missing, build, start `kiln up` with a sample project
#   deploy/dev.sh test   install what is missing, build, run every test
# Installing is idempotent; sudo is used only when not root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

# Each package and why: README.md "Dependencies".
packages=(
  g++ cmake make pkg-config ccache git curl
  libcaf-dev libnats-dev nats-server librocksdb-dev
  libflatbuffers-dev flatbuffers-compiler libyaml-cpp-dev libboost1.74-dev
  libspdlog-dev catch2 nlohmann-json3-dev libssl-dev libre2-dev libcurl4-openssl-dev
  wrk nginx-light bubblewrap libexpat1-dev podman runc busybox-static docker.io tzdata
  radosgw ceph-mon ceph-osd uuid-runtime haproxy chromium
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev.sh: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  # Node.js runs the browser tests; a machine may have its own (newer) one.
  if ! command -v npm > /dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
}

build() {  # build DIR TYPE
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE="$2" > "$1.configure.log" 2>&1 \
    || { cat "$1.configure.log"; exit 1; }
  cmake --build "$1" -j "$(nproc)"
}

cmd=${1:-}
case "$cmd" in
  up)
    shift
    install_missing
    build build-release RelWithDebInfo
    data=${KILN_DATA:-./kiln-data}
    listen=${KILN_LISTEN:-127.0.0.1:8080}
    ./build-release/cli/kiln up --data "$data" --listen "$listen" "$@" &
    pid=$!
    trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
    for _ in $(seq 1 100); do
      curl -fsS "http://$listen/readyz" > /dev/null 2>&1 && break
      sleep 0.1
    done
    # Load the sample project through the public API, as the node's admin.
    token=${KILN_TOKEN:-$(cat "$data/admin.token" 2>/dev/null)}
    code=$(curl -sS -o /tmp/kiln-sample.out -w '%{http_code}' -X PUT \
      --data-binary @deploy/sample-project.yml -H 'Content-Type: application/yaml' \
      -H "Authorization: Bearer $token" \
      "http://$listen/v1/projects/sample" || true)
    if [ "$code" = 201 ] || [ "$code" = 200 ]; then
      echo "dev.sh: sample project loaded: http://$listen/v1/projects/sample"
      # One build end to end, run by the node's local worker.
      build=$(curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d '{"trigger":"ci"}' "http://$listen/v1/projects/sample/builds" \
        | sed -n 's/.*"build":\([0-9]*\).*/\1/p')
      status=QUEUED
      for _ in $(seq 1 300); do
        status=$(curl -fsS -H "Authorization: Bearer $token" \
          "http://$listen/v1/projects/sample/builds/$build" \
          | sed -n 's/.*"status":"\([A-Z]*\)","trigger".*/\1/p')
        case "$status" in PASSED|FAILED|CANCELLED) break ;; esac
        sleep 0.1
      done
      echo "dev.sh: sample build $build: $status"
      echo "  console: curl -H \"Authorization: Bearer \$(cat $data/admin.token)\" http://$listen/v1/projects/sample/builds/$build/runs/unit-test/console"
    else
      echo "dev.sh: sample project NOT loaded (HTTP $code): $(cat /tmp/kiln-sample.out 2>/dev/null)"
    fi
    echo "dev.sh: admin token in $data/admin.token; try:"
    echo "  curl -H \"Authorization: Bearer \$(cat $data/admin.token)\" http://$listen/v1/projects"
    echo "dev.sh: kiln is running (pid $pid); Ctrl-C stops it"
    wait $pid
    ;;
  test)
    install_missing
    # playwright-core for the UI's browser tests, as locked (never a
    # downloaded browser: they drive Debian's chromium).
    (cd tests/ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    build build-test Debug
    # The docker executor's test needs a daemon; start one for the tests
    # if none answers (no systemd on CI machines), and stop it after.
    dockerd_pid=
    if ! docker version > /dev/null 2>&1 && command -v dockerd > /dev/null; then
      as_root dockerd --iptables=false --bridge=none > build-test/dockerd.log 2>&1 &
      dockerd_pid=$!
      for _ in $(seq 1 100); do docker version > /dev/null 2>&1 && break; sleep 0.2; done
      docker version > /dev/null 2>&1 || echo "dev.sh: dockerd did not start (build-test/dockerd.log): docker runs go untested"
    fi
    # The S3 tests' server: a single-node radosgw (deploy/radosgw), one
    # per run, stopped by its PIDs after.
    rgw_dir="$here/build-test/radosgw"
    trap '[ -n "$dockerd_pid" ] && as_root kill "$dockerd_pid" 2>/dev/null; "$here/deploy/radosgw/radosgw.sh" stop "$rgw_dir"; true' EXIT
    endpoint=$(deploy/radosgw/radosgw.sh start "$rgw_dir" 7480 | tail -1)
    export KILN_TEST_S3_ENDPOINT=${endpoint#S3_ENDPOINT=}
    cd build-test
    ctest --output-on-failure -j "$(nproc)" --timeout 600
    ;;
  *)
    echo "usage: deploy/dev.sh up|test" >&2
    exit 2
    ;;
esac

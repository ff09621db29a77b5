#!/usr/bin/env bash
# `make test`: lint, then every test against the real local cluster, Postgres and Redis.
# Starts the local cluster when it is not running and stops it again afterwards (KEEP_CLUSTER=1
# keeps it); a cluster that was already running is left as it was.
#
# On a fresh machine most of the time is the Go tools' cold build (about 17 minutes), and the
# suites that need no cluster take about 8. So the tools build in the background, at a lower
# priority, while the Python packages install, the lint and those suites run; the cluster and
# its suites come once every tool is there. With a warm cache that build is done at once.
# Arguments are pytest's: `make test` runs everything, hack/test.sh PATH... only PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
start=$SECONDS
# The suites that need no cluster: they run while the tools build (the few tests that run a tool,
# kube-score or the S3 server, wait for that one). Every other suite, a new one included, runs
# after them, against the cluster.
suites_without_cluster=(tests/unit tests/api tests/integration tests/backup tests/image)
# The tests always use the local cluster: a KUBECONFIG from the caller's shell may name a real one.
export KUBECONFIG="$PWD/.local/kubeconfig"
mkdir -p .local

tools_log=.local/build-tools.log
# The script's order puts first what those suites use (hack/kube-score.sh and tests/support/tools.py
# wait for a tool still building).
setsid -w nice -n 10 hack/build-tools.sh >"$tools_log" 2>&1 &
tools_pid=$!
tools_done=false
wait_for_tools() {
  echo "== tools (built in the background, log in $tools_log)"
  if ! wait "$tools_pid"; then
    tools_done=true
    tail -n 40 "$tools_log" >&2
    echo "error: hack/build-tools.sh failed (see above); it needs Go >= 1.24 and the Go module proxy" >&2
    exit 1
  fi
  tools_done=true
  # What was built and how long it took; not Go's download lines.
  grep '^\[build-tools\].* built in ' "$tools_log" || true
}

started_cluster=false
cleanup() {
  # A build still running when the script stops early (a failed lint) goes with it.
  $tools_done || kill -- "-$tools_pid" 2>/dev/null || true
  if $started_cluster && [ -z "${KEEP_CLUSTER:-}" ]; then
    echo "== stopping the local cluster"
    hack/cluster.sh down
    # Nothing of the real node may outlive `down`: processes, links, routes, firewall, mounts.
    $py -m tests.support.footprint clean || { echo "error: cluster down left the above behind" >&2; exit 1; }
  fi
}
trap cleanup EXIT

make --no-print-directory install

echo "== lint"
$py -m ruff check .
$py -m ruff format --check .
$py -m mypy

failed=0
if [ $# -eq 0 ]; then
  echo "== tests that need no cluster (the tools build meanwhile)"
  $py -m pytest --durations=10 "${suites_without_cluster[@]}" || failed=1
fi

wait_for_tools
hack/kube-score.sh

echo "== local cluster"
if ! hack/cluster.sh status >/dev/null 2>&1; then
  started_cluster=true
  hack/cluster.sh up
fi

echo "== tests"
# The slowest tests are listed at the end: where the suite's time goes, run after run.
if [ $# -eq 0 ]; then
  $py -m pytest --durations=25 "${suites_without_cluster[@]/#/--ignore=}" || failed=1
else
  $py -m pytest --durations=25 "$@" || failed=1
fi
echo "== make test finished in $((SECONDS - start)) s"
exit "$failed"

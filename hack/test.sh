#!/usr/bin/env bash
# `make test`: lint, then every test against the real local cluster, Postgres and Redis.
# Starts the local cluster when it is not running and stops it again afterwards (KEEP_CLUSTER=1
# keeps it); a cluster that was already running is left as it was.
#
# The cluster's suites take about 23 minutes and mostly wait (on the operator, the pods, the API
# server), so the suites that need no cluster (about 8 minutes of CPU) run beside them, at a lower
# priority. On a fresh machine the cluster's Go tools (about 12 minutes on 2 cores) and the real
# node's images (about 3) are built first: the tools start at once, the images once the Debian
# packages are installed, beside the lint. Running the suites beside the build instead gains
# nothing: both want every core. The tools only those suites use (kube-score, the S3 server)
# are built by them, at their priority.
# Arguments are pytest's: `make test` runs everything, hack/test.sh PATH... only PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
start=$SECONDS
# The suites that need no cluster; every other suite, a new one included, runs against the cluster.
suites_without_cluster=(tests/unit tests/api tests/integration tests/backup tests/image)
cluster_suites=("${suites_without_cluster[@]/#/--ignore=}")
# The real node's restart compares everything on the machine before and after (tests/support/
# footprint.py): it runs alone, once the suites beside it are done.
alone_mark=restarts_node
# The tests always use the local cluster: a KUBECONFIG from the caller's shell may name a real one.
export KUBECONFIG="$PWD/.local/kubeconfig"
mkdir -p .local

tools_log=.local/build-tools.log
images_log=.local/node-images.log
beside_log=.local/test-without-cluster.log
# The cluster's tools and helm (the chart's tests); `hack/cluster.sh up` and a test that runs a
# tool (tests/support/tools.py, hack/kube-score.sh) wait for theirs, or build it.
setsid -w hack/build-tools.sh etcd kubernetes kwok metrics-server node coredns helm >"$tools_log" 2>&1 &
tools_pid=$!
images_pid=
beside_pid=
started_cluster=false
cleanup() {
  # What still runs in the background when the script stops early (a failed lint) goes with it.
  for pid in $tools_pid $images_pid $beside_pid; do
    kill -- "-$pid" 2>/dev/null || true
  done
  if $started_cluster && [ -z "${KEEP_CLUSTER:-}" ]; then
    echo "== stopping the local cluster"
    hack/cluster.sh down
    # Nothing of the real node may outlive `down`: processes, links, routes, firewall, mounts.
    $py -m tests.support.footprint clean || { echo "error: cluster down left the above behind" >&2; exit 1; }
  fi
}
trap cleanup EXIT

wait_for_tools() {
  if ! wait "$tools_pid"; then
    tail -n 40 "$tools_log" >&2
    echo "error: hack/build-tools.sh failed (see above); it needs Go >= 1.24 and the Go module proxy" >&2
    exit 1
  fi
  # What was built and how long it took; not Go's download lines.
  grep '^\[build-tools\].* built in ' "$tools_log" || true
}

make --no-print-directory install
# After the install: the images' build installs what it lacks with apt-get, as the install does.
# `hack/node.sh up` waits for this build, or makes its own when this one failed.
setsid -w hack/node.sh build-images >"$images_log" 2>&1 &
images_pid=$!

echo "== lint"
$py -m ruff check .
$py -m ruff format --check .
$py -m mypy

# A test run with arguments needs whatever tool it may use.
[ $# -eq 0 ] || { echo "== tools (log in $tools_log)"; wait_for_tools; }

echo "== local cluster (its tools are built first; log in $tools_log)"
if ! hack/cluster.sh status >/dev/null 2>&1; then
  started_cluster=true
  hack/cluster.sh up
fi

failed=0
if [ $# -gt 0 ]; then
  echo "== tests"
  $py -m pytest --durations=25 "$@" || failed=1
  echo "== make test finished in $((SECONDS - start)) s"
  exit "$failed"
fi

# The suites that need no cluster, then kube-score on what we render, in the background at a
# lower priority than the cluster, whose tests wait with deadlines.
setsid -w nice -n 10 bash -c '"$@"; status=$?; hack/kube-score.sh || status=1; exit "$status"' beside \
  "$py" -m pytest --durations=10 "${suites_without_cluster[@]}" >"$beside_log" 2>&1 &
beside_pid=$!

echo "== tests against the cluster (the suites that need no cluster run beside them)"
# The slowest tests are listed at the end: where the suite's time goes, run after run.
$py -m pytest --durations=25 "${cluster_suites[@]}" -m "not $alone_mark" || failed=1

echo "== tests that need no cluster, and kube-score (ran beside the above; log in $beside_log)"
wait "$beside_pid" || failed=1
beside_pid=
cat "$beside_log"

echo "== tests that run alone"
$py -m pytest "${cluster_suites[@]}" -m "$alone_mark" || failed=1

echo "== tools (built in the background; log in $tools_log)"
wait_for_tools
echo "== make test finished in $((SECONDS - start)) s"
exit "$failed"

#!/usr/bin/env bash
# `make test`: lint, then every test against the real local cluster, Postgres and Redis.
# Starts the local cluster when it is not running and stops it again afterwards (KEEP_CLUSTER=1
# keeps it); a cluster that was already running is left as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
start=$SECONDS

echo "== lint"
$py -m ruff check .
$py -m ruff format --check .
$py -m mypy
hack/kube-score.sh

started_cluster=false
stop_cluster() {
  if $started_cluster && [ -z "${KEEP_CLUSTER:-}" ]; then
    echo "== stopping the local cluster"
    hack/cluster.sh down
    # Nothing of the real node may outlive `down`: processes, links, routes, firewall, mounts.
    $py -m tests.support.footprint clean || { echo "error: cluster down left the above behind" >&2; exit 1; }
  fi
}
trap stop_cluster EXIT

echo "== local cluster"
# The tests always use the local cluster: a KUBECONFIG from the caller's shell may name a real one.
if ! hack/cluster.sh status >/dev/null 2>&1; then
  started_cluster=true
  hack/cluster.sh up
fi
export KUBECONFIG="$PWD/.local/kubeconfig"

echo "== tests"
# The slowest tests are listed at the end: where the suite's time goes, run after run.
$py -m pytest --durations=25 "$@"
echo "== make test finished in $((SECONDS - start)) s"

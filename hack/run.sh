#!/usr/bin/env bash
# `make run`: install the CRD, run the operator, apply the sample TaskManager and show it reaching
# Ready, then keep the operator running in the foreground (Ctrl-C stops it).
# RUN_ONCE=1 stops after the sample is Ready (a smoke test of the whole path).
set -euo pipefail
cd "$(dirname "$0")/.."

local_dir=.local
log="$local_dir/operator.log"
mkdir -p "$local_dir"

echo "== CRD"
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established crd/taskmanagers.taskmanager.dev --timeout=60s

echo "== operator (log: $log)"
.venv/bin/python -m taskmanager_operator --all-namespaces \
  --liveness "http://127.0.0.1:${OPERATOR_LIVENESS_PORT:-8080}/healthz" >"$log" 2>&1 &
operator=$!
trap 'kill "$operator" 2>/dev/null || true; wait "$operator" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 60))
until curl -fsS "http://127.0.0.1:${OPERATOR_LIVENESS_PORT:-8080}/healthz" >/dev/null 2>&1; do
  if ! kill -0 "$operator" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "the operator did not start:" >&2; tail -n 30 "$log" >&2; exit 1
  fi
  sleep 1
done

echo "== sample TaskManager (samples/taskmanager.yaml)"
kubectl apply -f samples/taskmanager.yaml
kubectl wait --for=jsonpath='{.status.phase}'=Ready tm/demo --timeout=180s
kubectl get tm demo
# Every kind of child, from the operator's registry (an assignment, so set -e sees a failure).
children=$(.venv/bin/python -m taskmanager_operator.children --served)
kubectl get "$children" -l app.kubernetes.io/instance=demo
echo
echo "kubectl describe tm demo   # conditions and events"
[ -n "${RUN_ONCE:-}" ] && exit 0
echo "The operator keeps running; Ctrl-C stops it."
wait "$operator"

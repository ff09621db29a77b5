#!/usr/bin/env bash
# `make run`: install the CRD, run the operator, apply the sample TaskManager and show it reaching
# Ready, then keep the operator running in the foreground (Ctrl-C stops it).
# On the local cluster the sample runs on the real node (hack/node.sh) from the locally built
# images, and the script ends by calling the running API through its Service.
# RUN_ONCE=1 stops after the sample is Ready and answering (a smoke test of the whole path);
# RUN_NAMESPACE=ns watches and uses only that namespace (default: every namespace, the sample in
# the current one).
set -euo pipefail
cd "$(dirname "$0")/.."

local_dir=.local
log="$local_dir/operator.log"
mkdir -p "$local_dir"

echo "== CRD"
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for=condition=Established crd/taskmanagers.taskmanager.dev --timeout=60s

echo "== operator (log: $log)"
if [ -n "${RUN_NAMESPACE:-}" ]; then
  scope=(--namespace "$RUN_NAMESPACE")
  ns=(--namespace "$RUN_NAMESPACE")
else
  scope=(--all-namespaces)
  ns=()
fi
.venv/bin/python -m taskmanager_operator "${scope[@]}" \
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
on_real_node=false
if [ "$KUBECONFIG" = "$PWD/$local_dir/kubeconfig" ] && hack/node.sh status >/dev/null 2>&1; then
  on_real_node=true
fi
if $on_real_node; then
  # The local cluster pulls from no registry: the sample's pods land on the real node and use
  # the images built there, with its StorageClass; everything else is the sample as written.
  hack/node.sh refresh
  # shellcheck source=hack/node.env
  . hack/node.env
  .venv/bin/python - samples/taskmanager.yaml <<PY | kubectl apply "${ns[@]}" -f -
import json, sys, yaml
sample = yaml.safe_load(open(sys.argv[1]))
spec = sample["spec"]
spec.update(image="$NODE_API_IMAGE", imagePullPolicy="Never", scheduling={
    "nodeSelector": {"$NODE_LABEL_KEY": "true"},
    "tolerations": [{"key": "$NODE_TAINT_KEY", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
})
spec["database"]["managed"].update(image="$NODE_POSTGRES_IMAGE", storageClassName="$NODE_STORAGE_CLASS")
spec["redis"]["managed"].update(image="$NODE_REDIS_IMAGE")
print(json.dumps(sample))
PY
else
  kubectl apply "${ns[@]}" -f samples/taskmanager.yaml
fi
kubectl wait "${ns[@]}" --for=jsonpath='{.status.phase}'=Ready tm/demo --timeout=300s
kubectl get "${ns[@]}" tm demo
# Every kind of child, from the operator's registry (an assignment, so set -e sees a failure).
children=$(.venv/bin/python -m taskmanager_operator.children --served)
kubectl get "${ns[@]}" "$children" -l app.kubernetes.io/instance=demo
echo
echo "kubectl describe ${ns[*]} tm demo   # conditions and events"
if $on_real_node; then
  address=$(kubectl get "${ns[@]}" service demo-api -o jsonpath='{.spec.clusterIP}:{.spec.ports[0].port}')
  echo
  echo "The API really runs. Call it through its Service:"
  echo "  curl http://$address/ready"
  curl -fsS "http://$address/ready"
  echo
  echo "  (or: kubectl port-forward ${ns[*]} service/demo-api 8000:80, then http://127.0.0.1:8000/docs)"
fi
[ -n "${RUN_ONCE:-}" ] && exit 0
echo "The operator keeps running; Ctrl-C stops it."
wait "$operator"

#!/usr/bin/env bash
# The local Kubernetes for tests and demos: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, metrics-server) run as processes by kwokctl, with kwok
# simulating nodes and pods, plus one real node (hack/node.sh) where pods that ask for it really run.
# Everything lives under the repository's ignored .local/.
#
# Usage: hack/cluster.sh up|down|status|stop-apiserver|start-apiserver
#   stop-apiserver / start-apiserver stop the running cluster's kube-apiserver alone and start it
#   again with the same command line, for the tests of an API server outage; the rest of the
#   control plane, the nodes and the cluster's data stay.
#   REAL_NODE=0 starts the kwok-only cluster (nothing really runs); the default needs root and
#   containerd, and says what is missing when they are not there.
#   Its size, for benchmarks (the defaults are what the tests expect; `up` applies them when it
#   creates the cluster): KWOK_NODES simulated nodes (2), KWOK_NODE_PODS pods each (110),
#   CLUSTER_VOLUMES PersistentVolumes (100).
#   CLUSTER_SERVICE_CIDR, the Services' range: the real node routes SERVICE_CIDR (hack/node.env)
#   and needs that one; a kwok-only cluster keeps kube-apiserver's default (10.0.0.0/24, 253
#   Services: a hundred TaskManagers fill it) unless this names another.
#   CLUSTER_AUDIT=1 records every request in the API server's audit log (Metadata level: who,
#   what, when, no bodies), .local/kwok/clusters/$CLUSTER_NAME/logs/audit.log; off by default.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
here="$repo/hack"
# shellcheck source=hack/versions.env
. "$here/versions.env"
# shellcheck source=hack/node.env
. "$here/node.env"
real_node=${REAL_NODE:-1}
cluster_audit=${CLUSTER_AUDIT:-0}
if [ "$real_node" = 0 ]; then
  service_cidr=${CLUSTER_SERVICE_CIDR:-}
elif [ -n "${CLUSTER_SERVICE_CIDR:-}" ] && [ "$CLUSTER_SERVICE_CIDR" != "$SERVICE_CIDR" ]; then
  echo "error: the real node routes $SERVICE_CIDR (hack/node.env); CLUSTER_SERVICE_CIDR=$CLUSTER_SERVICE_CIDR needs REAL_NODE=0" >&2
  exit 2
else
  service_cidr=$SERVICE_CIDR
fi

name=${CLUSTER_NAME:-taskmanager}
local_dir="$repo/.local"
export KWOK_WORKDIR="$local_dir/kwok"
kubeconfig="$local_dir/kubeconfig"
tools="$local_dir/bin"
export PATH="$tools:$PATH"

log() { printf '[cluster] %s\n' "$*" >&2; }

# Stable, version-free names for the cached binaries, so kwokctl (which wants `kubectl` on PATH)
# and people can use them: export PATH="$PWD/.local/bin:$PATH". Only what the control plane runs is
# built here (hack/node.sh builds the node's): `make cluster-up` builds the rest first, and
# `make test` builds it beside the cluster, so a link may wait a few minutes for its binary.
link_tools() {
  local bin
  bin=$("$here/build-tools.sh" etcd kubernetes kwok metrics-server | tail -n 1)
  mkdir -p "$tools"
  ln -sfn "$bin/kube-apiserver-$KUBERNETES_VERSION" "$tools/kube-apiserver"
  ln -sfn "$bin/kube-controller-manager-$KUBERNETES_VERSION" "$tools/kube-controller-manager"
  ln -sfn "$bin/kube-scheduler-$KUBERNETES_VERSION" "$tools/kube-scheduler"
  ln -sfn "$bin/kubectl-$KUBERNETES_VERSION" "$tools/kubectl"
  ln -sfn "$bin/etcd-$ETCD_VERSION" "$tools/etcd"
  ln -sfn "$bin/kwok-$KWOK_VERSION" "$tools/kwok"
  ln -sfn "$bin/kwokctl-$KWOK_VERSION" "$tools/kwokctl"
  ln -sfn "$bin/metrics-server-$METRICS_SERVER_VERSION" "$tools/metrics-server"
  ln -sfn "$bin/helm-$HELM_VERSION" "$tools/helm"
  ln -sfn "$bin/kube-score-$KUBE_SCORE_VERSION" "$tools/kube-score"
  ln -sfn "$bin/kubelet-$KUBERNETES_VERSION" "$tools/kubelet"
  ln -sfn "$bin/kube-proxy-$KUBERNETES_VERSION" "$tools/kube-proxy"
  ln -sfn "$bin/coredns-node-$COREDNS_VERSION" "$tools/coredns"
}

# With the real node, kwok manages only the simulated nodes (kwokctl always passes
# --manage-all-nodes=true; the later flag wins), and the API server is one the node can use: it
# reaches the kubelet by its InternalIP with a client certificate (never a name lookup), and pods
# reach it through the kubernetes Service at the bridge address (a relay there forwards to the
# loopback it listens on), which its serving certificate names.
real_node_config() {
  local pki="$KWOK_WORKDIR/clusters/$name/pki"
  cat <<YAML
  kubeApiserverCertSANs: [${SERVICE_CIDR%.*/*}.1, $NODE_IP]
componentsPatches:
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-client-certificate, value: "$pki/admin.crt"}
  - {key: kubelet-client-key, value: "$pki/admin.key"}
  - {key: kubelet-preferred-address-types, value: InternalIP}
  - {key: service-cluster-ip-range, value: "$service_cidr"}
  - {key: advertise-address, value: "$NODE_IP"}
YAML
}

# A kwok-only cluster with a Services' range of its own (CLUSTER_SERVICE_CIDR).
kwok_only_config() {
  [ -n "$service_cidr" ] || return 0
  cat <<YAML
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: service-cluster-ip-range, value: "$service_cidr"}
YAML
}

# Every request at Metadata level (user, user agent, verb, object, timestamps; no bodies), from
# the response on: a benchmark counts the requests each client made (bench/operator_audit.py).
write_audit_policy() {
  cat > "$local_dir/audit-policy.yaml" <<YAML
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
YAML
}

# kwokctl uses its built-in stages only when the config names none, so adding one stage means
# listing the defaults too: they come from the kwok module the build already downloaded.
write_config() {
  local kwok_dir
  kwok_dir=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  {
    cat "$here/kwok/kwokctl.yaml"
    if [ "$real_node" = 0 ]; then kwok_only_config; else real_node_config; fi
    local stage
    for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
      printf -- '---\n'
      cat "$kwok_dir/kustomize/stage/$stage.yaml"
    done
    printf -- '---\n'
    cat "$here/kwok/stage-image-fails.yaml"
    printf -- '---\n'
    cat "$here/kwok/stage-backup-result.yaml"
  } > "$local_dir/kwokctl.yaml"
}

cluster_exists() {
  [ -x "$tools/kwokctl" ] && kwokctl get clusters 2>/dev/null | grep -qx "$name"
}

api_ready() {
  [ -f "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# Nodes that metrics-server can scrape: kwok serves every node's resource metrics on its one port,
# under a path per node (the annotation tells metrics-server which), so each node's address is the
# loopback kwok listens on. The nodes alternate between two zones, so topology spread has somewhere
# to go.
# They have ephemeral storage: a pod that requests some (every pod the operator makes) fits only
# on a node that reports it.
kwok_node_storage=100Gi
kwok_nodes=${KWOK_NODES:-2}
kwok_node_pods=${KWOK_NODE_PODS:-110}
create_nodes() {
  local i
  for i in $(seq 0 $((kwok_nodes - 1))); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    topology.kubernetes.io/zone: zone-$((i % 2))
    type: kwok
spec: {}
status:
  addresses: [{type: InternalIP, address: 127.0.0.1}]
  allocatable: {cpu: "32", memory: 256Gi, ephemeral-storage: $kwok_node_storage, pods: "$kwok_node_pods"}
  capacity: {cpu: "32", memory: 256Gi, ephemeral-storage: $kwok_node_storage, pods: "$kwok_node_pods"}
YAML
  done | kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null
}

# A cluster made before the simulated nodes had ephemeral storage gets it (kwok keeps what the
# node's status says).
add_node_storage() {
  local node storage="{\"ephemeral-storage\": \"$kwok_node_storage\"}"
  for node in $(kubectl --kubeconfig "$kubeconfig" get nodes --selector=type=kwok -o name); do
    kubectl --kubeconfig "$kubeconfig" patch "$node" --subresource=status --type=merge \
      -p "{\"status\": {\"allocatable\": $storage, \"capacity\": $storage}}" >/dev/null
  done
}

# There is no volume provisioner in a simulated cluster, so a default StorageClass with static
# volumes lets PersistentVolumeClaims (a managed database's) bind and their pods schedule.
create_volumes() {
  local i
  {
    cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
YAML
    for i in $(seq -w 1 "${CLUSTER_VOLUMES:-100}"); do
      cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: kwok-volume-$i}
spec:
  storageClassName: standard
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/kwok-volumes/$i}
YAML
    done
  } | kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null
}

# With no provisioner nothing cleans a volume whose claim was deleted: it stays Released and
# would never bind again. Its data is simulated, so clearing the claim makes it Available again.
recycle_volumes() {
  local pv
  for pv in $(kubectl --kubeconfig "$kubeconfig" get pv \
    -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}'); do
    kubectl --kubeconfig "$kubeconfig" patch pv "$pv" --type json \
      -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
  done
}

wait_for() {
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out waiting for $what"
      return 1
    fi
    sleep 1
  done
}

# Every simulated node Ready, from one list: `kubectl wait` checks nodes one after another and its
# timeout covers them all, so with the bench's 55 nodes it never got to the last ones.
kwok_nodes_ready() {
  local ready
  ready=$(kubectl --kubeconfig "$kubeconfig" get nodes --selector=type=kwok -o \
    jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -cx True)
  [ "$ready" -eq "$kwok_nodes" ]
}

# kwokctl may start metrics-server before the API server listens; it then exits at once
# ("unable to load configmap based request-header-client-ca-file") and nothing restarts it.
# `kwokctl start cluster` starts what of the cluster is not running, and nothing else.
metrics_available() {
  if ! pgrep -f "$KWOK_WORKDIR/clusters/$name/bin/metrics-server" >/dev/null; then
    log "metrics-server is not running (it started before the API server listened): starting it again"
    kwokctl start cluster --name "$name" >>"$local_dir/kwokctl.log" 2>&1 || return 1
  fi
  kubectl --kubeconfig "$kubeconfig" wait --for=condition=Available \
    apiservice/v1beta1.metrics.k8s.io --timeout=5s
}

up() {
  local start=$SECONDS
  link_tools
  # A machine that cannot run the real node says so before anything starts.
  [ "$real_node" = 0 ] || "$here/node.sh" check
  if cluster_exists && api_ready; then
    recycle_volumes
    add_node_storage
    wait_for "metrics.k8s.io to be available" 90 metrics_available
    [ "$real_node" = 0 ] || "$here/node.sh" up
    log "cluster '$name' is already running (kubeconfig: $kubeconfig)"
    return 0
  fi
  if cluster_exists; then
    log "cluster '$name' exists but does not answer: recreating it"
    down
  fi
  mkdir -p "$local_dir"
  write_config
  local audit=()
  if [ "$cluster_audit" = 1 ]; then
    write_audit_policy
    # The API server rotates its audit log every 100 MB by default (a benchmark at 100
    # TaskManagers writes more); a reader counting from a mark needs the one file.
    audit=(--kube-audit-policy "$local_dir/audit-policy.yaml"
      --extra-args kube-apiserver=audit-log-maxsize=100000)
  fi
  # The binary runtime runs every component as a local process; each binary is given as a path
  # (kwokctl would otherwise download them). The short HPA sync period makes autoscaling react
  # within seconds, as the tests and demos need.
  # The one controller-manager and scheduler elect no leader: with an election, losing the API
  # server for longer than the renew deadline (10 s) makes them exit, and nothing would start them
  # again (a real control plane's kubelet would); stop-apiserver is such an outage.
  kwokctl create cluster --name "$name" --config "$local_dir/kwokctl.yaml" --kubeconfig "" \
    --kube-apiserver-binary "$tools/kube-apiserver" \
    --kube-controller-manager-binary "$tools/kube-controller-manager" \
    --kube-scheduler-binary "$tools/kube-scheduler" \
    --kwok-controller-binary "$tools/kwok" \
    --etcd-binary "$tools/etcd" \
    --metrics-server-binary "$tools/metrics-server" \
    --enable metrics-server \
    --extra-args kube-controller-manager=horizontal-pod-autoscaler-sync-period=5s \
    --extra-args kube-controller-manager=leader-elect=false \
    --extra-args kube-scheduler=leader-elect=false \
    "${audit[@]}" \
    --wait 2m >"$local_dir/kwokctl.log" 2>&1 || {
    log "kwokctl could not create the cluster:"; tail -n 30 "$local_dir/kwokctl.log" >&2; return 1
  }
  cp "$KWOK_WORKDIR/clusters/$name/kubeconfig.yaml" "$kubeconfig"
  chmod 600 "$kubeconfig"
  create_nodes
  create_volumes
  wait_for "nodes to be Ready" 60 kwok_nodes_ready
  # metrics-server reports a node only once pods on it use something, so readiness here is the
  # aggregated metrics API being available; the tests prove the scrape itself.
  wait_for "metrics.k8s.io to be available" 90 metrics_available
  if [ "$real_node" = 0 ]; then
    log "kwok-only cluster (REAL_NODE=0): every pod is simulated, nothing really runs"
  else
    "$here/node.sh" up
  fi
  log "cluster '$name' ready in $((SECONDS - start)) s"
  log "use it with: export KUBECONFIG=$kubeconfig PATH=$tools:\$PATH"
}

# A function, not `bash -c`: pgrep -f would find the pattern in that shell's own command line.
no_leftovers() { ! pgrep -f "$KWOK_WORKDIR/clusters/$name" >/dev/null; }

down() {
  # The real node first, while the API server still answers; it is removed whether or not it ran.
  "$here/node.sh" down
  if [ -x "$tools/kwokctl" ] && [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
    kwokctl delete cluster --name "$name" >>"$local_dir/kwokctl.log" 2>&1 || true
  fi
  rm -rf "${KWOK_WORKDIR:?}/clusters/$name" "$kubeconfig"
  # kwokctl stops what it started through pid files; anything still running from this cluster's
  # directory (a crash can lose a pid file) is stopped here, so no process outlives `down`.
  local leftover
  leftover=$(pgrep -f "$KWOK_WORKDIR/clusters/$name" || true)
  if [ -n "$leftover" ]; then
    log "stopping leftover processes: $leftover"
    # shellcheck disable=SC2086
    kill $leftover 2>/dev/null || true
    # An API server started again by start-apiserver may take a minute to drain; what is left
    # after 20 s is killed.
    wait_for "leftover processes to exit" 20 no_leftovers || {
      # shellcheck disable=SC2086
      kill -KILL $leftover 2>/dev/null || true
      wait_for "leftover processes to be killed" 20 no_leftovers
    }
  fi
  log "cluster '$name' removed"
}

apiserver_pid_file() { echo "$KWOK_WORKDIR/clusters/$name/pids/kube-apiserver.pid"; }
apiserver_command="$local_dir/kube-apiserver.cmdline"

# Nothing listens on the address and port any more (the real node's socat forwards the same port
# on another address, and stays).
port_free() { [ -z "$(ss -Htln "src $1 and sport = :$2")" ]; }

stop_apiserver() {
  local pid address port
  pid=$(cat "$(apiserver_pid_file)")
  kill -0 "$pid" 2>/dev/null || { log "kube-apiserver ($pid) is not running"; return 1; }
  cp "/proc/$pid/cmdline" "$apiserver_command"
  # Killed, as by a crash or a lost machine: a graceful stop stops listening at once but lingers
  # up to a minute for its last requests, and the outage would begin at neither a known moment.
  kill -KILL "$pid"
  # Until its port is free: its first thread may be a zombie while the others still hold it.
  address=$(tr '\0' '\n' <"$apiserver_command" | sed -n 's/^--bind-address=//p')
  port=$(tr '\0' '\n' <"$apiserver_command" | sed -n 's/^--secure-port=//p')
  wait_for "kube-apiserver to stop" 60 port_free "${address:-0.0.0.0}" "$port"
  log "kube-apiserver stopped"
}

start_apiserver() {
  local command=() dir="$KWOK_WORKDIR/clusters/$name"
  [ -f "$apiserver_command" ] || { log "no stopped kube-apiserver to start"; return 1; }
  mapfile -d '' command <"$apiserver_command"
  # As kwokctl started it: in the cluster's directory, its own session, its log appended to, its
  # pid where kwokctl (and `down`) look for it.
  (
    cd "$dir"
    setsid "${command[@]}" </dev/null >>"$dir/logs/kube-apiserver.log" 2>&1 &
    echo $! >"$(apiserver_pid_file)"
  )
  wait_for "kube-apiserver to be ready" 120 api_ready
  rm -f "$apiserver_command"
  log "kube-apiserver started"
}

status() {
  if cluster_exists && api_ready; then
    echo "running: KUBECONFIG=$kubeconfig"
  else
    echo "not running"
    return 1
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  stop-apiserver) stop_apiserver ;;
  start-apiserver) start_apiserver ;;
  *) echo "usage: $0 up|down|status|stop-apiserver|start-apiserver" >&2; exit 2 ;;
esac

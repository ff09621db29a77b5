#!/usr/bin/env bash
# The local cluster's real node: a kubelet and kube-proxy of the pinned Kubernetes version, with
# containerd, runc and the CNI bridge plugin from Debian and CoreDNS for cluster DNS, joined to the
# kwok control plane that hack/cluster.sh starts. Pods that tolerate its taint and select its
# label really run here; every other pod stays simulated on the kwok nodes.
#
# Every packet stays on this machine: the components listen on loopback or on our bridge, the
# pods live on the bridge's subnet, forwarding between the bridge and any other interface is
# dropped, kwok's simulated pod range is blackholed, and CoreDNS answers cluster names only.
#
# Usage: hack/node.sh up|down|status|check|refresh|build-images|import IMAGE...
#   up runs after the control plane is up; down is idempotent and removes everything up made;
#   refresh rebuilds the node's images from the working tree, imports the changed ones and empties
#   released volumes (what the e2e tests and make run do first); build-images only builds them
#   (`make test` does it while the tools build);
#   import puts podman images on the node (pods use them with imagePullPolicy Never or
#   IfNotPresent: no registry is reachable). Needs root and Debian's containerd (see check).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
here="$repo/hack"
# shellcheck source=hack/versions.env
. "$here/versions.env"
# shellcheck source=hack/node.env
. "$here/node.env"

cluster=${CLUSTER_NAME:-taskmanager}
local_dir="$repo/.local"
kubeconfig="$local_dir/kubeconfig"
pki="$local_dir/kwok/clusters/$cluster/pki"
state="$local_dir/node"
tools="$local_dir/bin"
cache=${TASKMANAGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskmanager-operator}
# The image store outlives the node, like the built binaries: a warm cluster-up imports nothing
# that has not changed. Everything else the node makes lives under $state and goes on down.
containerd_root="$cache/node/containerd"
# The iptables tables that existed before the node: down removes only the ones it added.
tables_before="$local_dir/node-tables-before"
sock="$state/containerd/containerd.sock"
export PATH="$tools:$PATH"

log() { printf '[node] %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

wait_for() {
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# What the node needs from the machine, each missing piece named with the way to get it.
check() {
  local problems=()
  [ "$(id -u)" -eq 0 ] || problems+=("it must run as root (a kubelet manages cgroups, mounts and network namespaces)")
  local cmd
  for cmd in containerd ctr runc conntrack socat nft iptables ip; do
    command -v "$cmd" >/dev/null 2>&1 || problems+=("$cmd is missing")
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || problems+=("the CNI plugins are missing (/usr/lib/cni/bridge)")
  [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || problems+=("no cgroup filesystem at /sys/fs/cgroup")
  if [ ${#problems[@]} -gt 0 ]; then
    printf 'error: this machine cannot run the real node:\n' >&2
    printf '  - %s\n' "${problems[@]}" >&2
    printf '  install the packages as root (hack/install-system-deps.sh does: apt-get install -y containerd runc containernetworking-plugins conntrack socat nftables iptables iproute2),\n' >&2
    printf '  or run the kwok-only cluster explicitly: REAL_NODE=0 make cluster-up (nothing then really runs)\n' >&2
    return 1
  fi
}

api_port() {
  sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$kubeconfig" | head -n 1
}

start_process() {
  local name=$1; shift
  "$@" >"$state/log/$name.log" 2>&1 &
  echo $! > "$state/pid/$name"
}

network_up() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Services' virtual IPs go to the bridge: kube-proxy rewrites them to a pod there, and one
  # without endpoints is refused instead of following the default route off the machine.
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  # kube-proxy programs Services whose endpoints are kwok's simulated pods too; their addresses
  # are not real, and a packet toward them must die here.
  ip route replace blackhole "$KWOK_POD_CIDR"
  nft -f - <<NFT
table inet $NODE_NFT_TABLE
delete table inet $NODE_NFT_TABLE
table inet $NODE_NFT_TABLE {
  chain forward {
    type filter hook forward priority -10; policy accept;
    iifname "$NODE_BRIDGE" oifname != "$NODE_BRIDGE" counter drop comment "pods reach nothing beyond the bridge"
    oifname "$NODE_BRIDGE" iifname != "$NODE_BRIDGE" counter drop comment "nothing beyond the bridge reaches pods"
  }
  chain output {
    type filter hook output priority -10; policy accept;
    ip daddr { $POD_CIDR, $SERVICE_CIDR } oifname != { "$NODE_BRIDGE", "lo" } counter drop comment "cluster addresses never leave by another interface"
  }
}
NFT
}

network_down() {
  nft delete table inet "$NODE_NFT_TABLE" 2>/dev/null || true
  ip route del blackhole "$KWOK_POD_CIDR" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
}

write_configs() {
  mkdir -p "$state"/{log,pid,containerd/state,cni/net.d,cni/ipam,kubelet/root,kubelet/pki,pod-logs,volumes} \
    "$containerd_root"
  cat > "$state/containerd/config.toml" <<TOML
version = 2
root = "$containerd_root"
state = "$state/containerd/state"
# A socket, root and state of our own: the machine's containerd, if any, is left alone.
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE an oom_score_adj below ours cannot be set: clamp instead of failing.
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  enable_unprivileged_ports = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
TOML
  cat > "$state/cni/net.d/10-taskmanager.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "taskmanager",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON
  cat > "$state/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$sock
podLogsDir: $state/pod-logs
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: ""
maxPods: $NODE_MAX_PODS
serializeImagePulls: false
registerWithTaints: [{key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}]
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
YAML
  cat > "$state/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
nodePortAddresses: [$NODE_IP/32]
oomScoreAdj: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Zeros leave the machine's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  # Cluster names only: no forward plugin, so a name outside cluster.local is refused here and
  # never asked of a resolver beyond the machine.
  cat > "$state/Corefile" <<COREFILE
cluster.local:53 in-addr.arpa:53 {
  bind $NODE_IP
  errors
  kubernetes cluster.local in-addr.arpa {
    kubeconfig $kubeconfig
    pods insecure
  }
  ready 127.0.0.1:$COREDNS_READY_PORT
  cache 5
}
COREFILE
}

# The sandbox image and the managed database's and Redis's, built with podman from the API
# image's local Debian base, and the API image itself. podman keeps each build's layers, so an
# unchanged image builds from cache in seconds. One build at a time (`make test` starts one
# before the cluster, `up` asks again); the logs live outside the node's state, which `up`
# starts by removing.
build_images() {
  local logs="$local_dir/node-images" lock
  mkdir -p "$logs"
  exec {lock}>"$logs/.lock"
  flock "$lock"
  IMAGE=$NODE_API_IMAGE "$here/image/build.sh" >"$logs/build-api.log" 2>&1 \
    || { tail -n 20 "$logs/build-api.log" >&2; die "make image failed"; }
  local base
  base=$(sed -n 's/^\[image\] building .* on \(.*\)$/\1/p' "$logs/build-api.log")
  [ -n "$base" ] || die "make image named no base image (log: $logs/build-api.log)"
  if ! podman image exists "$NODE_PAUSE_IMAGE"; then
    local dir; dir=$(mktemp -d)
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go build -ldflags "-s -w" -o "$dir/pause" "$here/node/pause/main.go"
    tar -C "$dir" -c pause | podman import --quiet --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' - "$NODE_PAUSE_IMAGE" >/dev/null
    rm -rf "$dir"
  fi
  local image
  for image in postgres redis; do
    local tag=$NODE_POSTGRES_IMAGE
    [ "$image" = redis ] && tag=$NODE_REDIS_IMAGE
    podman build --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network host \
      --build-arg "BASE_IMAGE=$base" --tag "$tag" "$here/node/$image" >"$logs/build-$image.log" 2>&1 \
      || { tail -n 20 "$logs/build-$image.log" >&2; die "building $tag failed"; }
  done
  exec {lock}>&-
}

# Imports an image into the node's containerd unless the same image (by podman's id) is there.
import_image() {
  local image=$1 id stamp
  id=$(podman image inspect --format '{{.Id}}' "$image") || die "image $image is missing: run make image"
  stamp="$containerd_root/imported/$(printf '%s' "$image" | tr '/:' '__')"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$id" ] && ctr_ images ls -q | grep -qx "$image"; then
    return 0
  fi
  local start=$SECONDS
  mkdir -p "$containerd_root/imported"
  podman save --format docker-archive "$image" | ctr_ images import --no-unpack=false - >/dev/null
  echo "$id" > "$stamp"
  log "imported $image in $((SECONDS - start)) s"
}

volumes_up() {
  local i path
  {
    cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: $NODE_STORAGE_CLASS}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
YAML
    for i in $(seq -w 1 "$NODE_VOLUMES"); do
      path="$state/volumes/$i"
      mkdir -p "$path"
      cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: $NODE_NAME-volume-$i}
spec:
  storageClassName: $NODE_STORAGE_CLASS
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  local: {path: $path}
  nodeAffinity:
    required:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]}]
YAML
    done
  } | kc apply -f - >/dev/null
}

# A volume whose claim is gone holds the old data: emptied, it is Available again.
recycle_volumes() {
  local pv path
  for pv in $(kc get pv -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{" "}{.spec.local.path}{"\n"}{end}' \
      | awk -v prefix="$state/volumes/" 'index($2, prefix) == 1 {print $1 ":" $2}'); do
    path=${pv#*:}
    find "$path" -mindepth 1 -delete
    kc patch pv "${pv%%:*}" --type json -p '[{"op": "remove", "path": "/spec/claimRef"}]' >/dev/null
  done
}

# The node's images built from the working tree and imported where they changed: the e2e tests
# and make run do this first, so they never run an image older than the code.
images() {
  local start=$SECONDS image
  build_images
  for image in "$NODE_PAUSE_IMAGE" "$NODE_POSTGRES_IMAGE" "$NODE_REDIS_IMAGE" "$NODE_API_IMAGE"; do
    import_image "$image"
  done
  log "images ready in $((SECONDS - start)) s"
}

running() { [ -f "$state/pid/$1" ] && kill -0 "$(cat "$state/pid/$1")" 2>/dev/null; }

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up() {
  check
  [ -f "$kubeconfig" ] || die "the control plane is not running: hack/cluster.sh up starts it (and the node)"
  if running kubelet && running containerd && node_ready; then
    recycle_volumes
    log "node $NODE_NAME is already running"
    return 0
  fi
  local start=$SECONDS
  down_quietly
  nft list tables | sed 's/^table //' > "$tables_before"
  "$here/build-tools.sh" node coredns >/dev/null
  mkdir -p "$state"
  write_configs
  network_up
  local port; port=$(api_port)
  # The API server listens on loopback only; pods reach it (the kubernetes Service) here.
  start_process apiserver-relay socat "TCP-LISTEN:$port,bind=$NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$port"
  start_process containerd containerd --config "$state/containerd/config.toml"
  wait_for "containerd" 30 ctr_ version
  images
  start_process kubelet "$tools/kubelet" --config "$state/kubelet/config.yaml" --kubeconfig "$kubeconfig" \
    --root-dir "$state/kubelet/root" --cert-dir "$state/kubelet/pki" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --node-labels "$NODE_LABEL_KEY=true,topology.kubernetes.io/zone=zone-real"
  start_process kube-proxy "$tools/kube-proxy" --config "$state/kube-proxy.yaml"
  start_process coredns "$tools/coredns" -conf "$state/Corefile"
  wait_for "node $NODE_NAME to be Ready" 90 node_ready || { tail -n 20 "$state/log/kubelet.log" >&2; return 1; }
  wait_for "CoreDNS" 30 curl -fsS "http://127.0.0.1:$COREDNS_READY_PORT/ready"
  volumes_up
  log "node $NODE_NAME ready in $((SECONDS - start)) s (pods opt in with nodeSelector $NODE_LABEL_KEY=true and a toleration of its taint)"
}

stop_process() {
  local name=$1 pid
  [ -f "$state/pid/$name" ] || return 0
  pid=$(cat "$state/pid/$name")
  kill "$pid" 2>/dev/null || true
  wait_for "$name to exit" 20 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  rm -f "$state/pid/$name"
}

# Every container and sandbox the node ran, stopped and removed while containerd still runs,
# so their mounts, network namespaces and cgroups go with them.
remove_containers() {
  ctr_ version >/dev/null 2>&1 || return 0
  local task
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill --signal SIGKILL "$task" >/dev/null 2>&1 || true
  done
  for task in $(ctr_ tasks ls -q 2>/dev/null); do
    wait_for "task $task to stop" 10 ctr_ tasks delete "$task" || ctr_ tasks delete --force "$task" >/dev/null 2>&1 || true
  done
  local container
  for container in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ containers delete "$container" >/dev/null 2>&1 || true
  done
}

# Leftovers the node's components make outside its own directories.
remove_leftovers() {
  local mount netns link
  # A pod's network namespace outlives its unmount until the kernel's cleanup gets to it, seconds
  # later, and the host's end of its veth with it: each namespace's links are deleted now, which
  # removes both ends at once.
  for netns in /run/netns/cni-*; do
    [ -e "$netns" ] || continue
    for link in $(ip -n "${netns##*/}" -o link show 2>/dev/null |
        awk -F': ' '$2 != "lo" {sub(/@.*/, "", $2); print $2}'); do
      ip -n "${netns##*/}" link del "$link" 2>/dev/null || true
    done
  done
  # Deepest first: volumes inside pods' directories, then the sandboxes' namespaces.
  for mount in $(awk -v s="$state" -v r="$containerd_root" 'index($5, s) == 1 || index($5, r) == 1 || $5 ~ "^/run/netns/cni-" {print $5}' \
      /proc/self/mountinfo | sort -r); do
    umount -l "$mount" 2>/dev/null || true
  done
  rm -f /run/netns/cni-* 2>/dev/null || true
  local controller dir
  for controller in /sys/fs/cgroup/*/; do
    dir="${controller}kubepods"
    [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # The kubelet's own chains and kube-proxy's (`kube-proxy --cleanup` leaves the kubelet's), and
  # the iptables tables they created, when nothing else uses them.
  [ -x "$tools/kube-proxy" ] && "$tools/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local family table
  for family in ip ip6; do
    for table in filter nat mangle; do
      nft list table "$family" "$table" >/dev/null 2>&1 || continue
      nft -a list table "$family" "$table" 2>/dev/null | awk '
        $1 == "chain" { chain = $2 }
        /jump KUBE-/ { print chain, $NF }' | while read -r chain handle; do
        nft delete rule "$family" "$table" "$chain" handle "$handle" 2>/dev/null || true
      done
      local chains
      chains=$(nft list table "$family" "$table" 2>/dev/null | awk '$1 == "chain" && $2 ~ /^KUBE-/ {print $2}')
      for chain in $chains; do nft flush chain "$family" "$table" "$chain"; done
      for chain in $chains; do nft delete chain "$family" "$table" "$chain" 2>/dev/null || true; done
      if ! grep -qx "$family $table" "$tables_before" 2>/dev/null \
          && ! nft list table "$family" "$table" 2>/dev/null | grep -qvE '^\s*(table|chain|type|policy|\}|$)'; then
        nft delete table "$family" "$table"
      fi
    done
  done
  rm -rf /run/containerd/s /run/containerd/runc /var/lib/kubelet/device-plugins /var/lib/kubelet/plugins_registry \
    /var/lib/kubelet/pod-resources /var/lib/kubelet/plugins /opt/containerd 2>/dev/null || true
  rmdir /var/lib/kubelet /run/containerd 2>/dev/null || true
}

down_quietly() {
  [ -d "$state" ] || { network_down; return 0; }
  stop_process coredns
  stop_process kube-proxy
  stop_process kubelet
  remove_containers
  stop_process containerd
  stop_process apiserver-relay
  # Anything still running from the node's directories (a lost pid file) stops too.
  local leftover
  leftover=$(pgrep -f "$state/" || true)
  # shellcheck disable=SC2086
  [ -z "$leftover" ] || kill -9 $leftover 2>/dev/null || true
  remove_leftovers
  network_down
  rm -rf "$state" "$tables_before"
}

down() {
  down_quietly
  [ -f "$kubeconfig" ] && kc delete node "$NODE_NAME" --ignore-not-found >/dev/null 2>&1 || true
  log "node $NODE_NAME removed"
}

status() {
  if running kubelet && node_ready; then echo "running: $NODE_NAME"; else echo "not running"; return 1; fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  check) check ;;
  refresh)
    running containerd || die "the node is not running: make cluster-up"
    images
    recycle_volumes ;;
  build-images) build_images ;;
  import)
    shift
    running containerd || die "the node is not running: make cluster-up"
    for image in "$@"; do import_image "$image"; done ;;
  *) echo "usage: $0 up|down|status|check|refresh|build-images|import IMAGE..." >&2; exit 2 ;;
esac

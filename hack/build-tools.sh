#!/usr/bin/env bash
# Builds the local Kubernetes toolchain from Go modules (no Docker, no downloads outside the Go
# module proxy) into a per-version cache outside the repository. A warm cache skips every build.
#
# Usage: hack/build-tools.sh [tool...]
#   tools: kubernetes etcd kwok metrics-server helm node coredns kube-score versitygw (default: all)
#   node is the real node's kubelet and kube-proxy (hack/node.sh), coredns its cluster DNS,
#   versitygw the S3-compatible server of the backup tests (tests/support/s3.py).
# Prints the bin directory on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"

cache=${TASKMANAGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/taskmanager-operator}
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

go_minor=$( (go env GOVERSION 2>/dev/null || true) | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$go_minor" ] || [ "$go_minor" -lt 24 ]; then
  echo "error: Go >= 1.24 is needed to build the local Kubernetes (found: ${go_minor:+go1.$go_minor}${go_minor:-none});" \
    "install it from https://go.dev/dl/ and run again" >&2
  exit 1
fi

mkdir -p "$cache/.locks"

log() { printf '[build-tools] %s\n' "$*" >&2; }

# Runs a build only when its stamp is missing and reports how long it took. One build of a tool
# at a time per cache, with a lock per tool: `make test` builds every tool in the background while
# the suites that need no cluster run, and a test that needs one tool asks for it alone
# (tests/support/tools.py), waiting for that tool's build and not for the others'.
timed_build() {
  local name=$1 stamp=$2 lock; shift 2
  exec {lock}>"$cache/.locks/$(basename "$stamp")"
  flock "$lock"
  if [ -f "$stamp" ]; then
    log "$name: cached"
  else
    log "$name: building (cold, this takes a while)"
    local start=$SECONDS
    "$@"
    touch "$stamp"
    log "$name: built in $((SECONDS - start)) s"
  fi
  exec {lock}>&-
}

# k8s.io/kubernetes replaces its staging modules with local paths, so `go install` cannot build it.
# A wrapper module maps each staging module to its published tag, generated from the real go.mod.
# build_kubernetes NAME CMD...: builds k8s.io/kubernetes/cmd/CMD for each CMD.
build_kubernetes() {
  local name=$1; shift
  local v=$KUBERNETES_VERSION staging="v0.${KUBERNETES_VERSION#v1.}"
  local dir="$work/$name-$v" cmd
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local/kubernetes-build >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u | while read -r mod; do
    go mod edit "-replace=$mod=$mod@$staging"
  done
  go mod edit "-require=k8s.io/kubernetes@$v"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > tools.go
  go mod tidy -e >/dev/null
  local minor=${v#v1.}; minor=${minor%%.*}
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  mkdir -p "$dir/out"
  go build -mod=mod -tags tools -ldflags "$ld" -o "$dir/out/" "${@/#/k8s.io/kubernetes/cmd/}"
  for cmd in "$@"; do
    mv "$dir/out/$cmd" "$bin/$cmd-$v"
  done
  cd "$work" && rm -rf "$dir"
}

# etcd's modules point at each other through relative replace lines as well; a wrapper module that
# requires the published server module builds its package main.
build_etcd() {
  local dir="$work/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local/etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  go build -mod=mod -ldflags "-s -w" -o "$bin/etcd-$ETCD_VERSION" go.etcd.io/etcd/server/v3
  cd "$work" && rm -rf "$dir"
}

go_install() {
  local out=$1 pkg=$2 ld=${3:-}
  local gobin="$work/gobin-$out"
  rm -rf "$gobin" && mkdir -p "$gobin"
  GOBIN=$gobin go install -ldflags "-s -w $ld" "$pkg"
  mv "$gobin"/* "$bin/$out"
  rm -rf "$gobin"
}

build_kwok() {
  go_install "kwok-$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
  go_install "kwokctl-$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
}

build_metrics_server() {
  go_install "metrics-server-$METRICS_SERVER_VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
}

# CoreDNS with the node's plugins only (hack/node/coredns/main.go), in a wrapper module.
build_coredns() {
  local dir="$work/coredns-$COREDNS_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  cp "$here/node/coredns/main.go" .
  go mod init local/coredns-build >/dev/null 2>&1
  go mod edit "-require=github.com/coredns/coredns@$COREDNS_VERSION"
  go mod tidy >/dev/null 2>&1
  go build -mod=mod -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    -o "$bin/coredns-node-$COREDNS_VERSION" .
  cd "$work" && rm -rf "$dir"
}

build_helm() {
  go_install "helm-$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

build_kube_score() {
  go_install "kube-score-$KUBE_SCORE_VERSION" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" \
    "-X main.version=${KUBE_SCORE_VERSION#v}"
}

# The module has no replace directives, so `go install` builds it directly. Its Makefile stamps
# main.Version (and the commit and time, which a module download does not know; left at defaults).
build_versitygw() {
  go_install "versitygw-$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" \
    "-X main.Version=$VERSITYGW_VERSION"
}

tools=("$@")
# In the order `make test` needs them while it builds them in the background: helm and kube-score
# for a unit test's lint, versitygw for the backup suite, then the cluster's.
[ ${#tools[@]} -gt 0 ] || tools=(helm kube-score versitygw kwok etcd kubernetes metrics-server node coredns)
for tool in "${tools[@]}"; do
  case $tool in
    kubernetes) timed_build "kubernetes $KUBERNETES_VERSION" "$bin/.kubernetes-$KUBERNETES_VERSION" \
      build_kubernetes control-plane kube-apiserver kube-controller-manager kube-scheduler kubectl ;;
    node) timed_build "kubelet and kube-proxy $KUBERNETES_VERSION" "$bin/.node-$KUBERNETES_VERSION" \
      build_kubernetes node kubelet kube-proxy ;;
    coredns) timed_build "coredns $COREDNS_VERSION (the node's plugins)" "$bin/.coredns-node-$COREDNS_VERSION" build_coredns ;;
    etcd) timed_build "etcd $ETCD_VERSION" "$bin/.etcd-$ETCD_VERSION" build_etcd ;;
    kwok) timed_build "kwok $KWOK_VERSION" "$bin/.kwok-$KWOK_VERSION" build_kwok ;;
    metrics-server) timed_build "metrics-server $METRICS_SERVER_VERSION" "$bin/.metrics-server-$METRICS_SERVER_VERSION" build_metrics_server ;;
    helm) timed_build "helm $HELM_VERSION" "$bin/.helm-$HELM_VERSION" build_helm ;;
    kube-score) timed_build "kube-score $KUBE_SCORE_VERSION" "$bin/.kube-score-$KUBE_SCORE_VERSION" build_kube_score ;;
    versitygw) timed_build "versitygw $VERSITYGW_VERSION" "$bin/.versitygw-$VERSITYGW_VERSION" build_versitygw ;;
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
echo "$bin"

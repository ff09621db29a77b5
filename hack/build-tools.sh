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

# write_tools_go PKG...: a wrapper module's tools.go, which imports each package main to build, so
# that `go mod tidy` keeps their modules.
write_tools_go() {
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    printf '\t_ "%s"\n' "$@"
    printf ')\n'
  } > tools.go
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
  write_tools_go "${@/#/k8s.io/kubernetes/cmd/}"
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

# kwok (and kwokctl) and metrics-server in one wrapper module: they are built on the same Kubernetes
# libraries (k8s.io v0.33), which one module compiles once for all three binaries instead of once
# for each tool (3.8 minutes for both instead of 6 on a cold cache here).
build_kwok_and_metrics_server() {
  local dir="$work/kwok-metrics-server" kwok=sigs.k8s.io/kwok metrics=sigs.k8s.io/metrics-server
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local/kwok-metrics-server-build >/dev/null 2>&1
  go mod edit "-require=$kwok@$KWOK_VERSION" "-require=$metrics@$METRICS_SERVER_VERSION"
  write_tools_go "$kwok/cmd/kwok" "$kwok/cmd/kwokctl" "$metrics/cmd/metrics-server"
  go mod tidy -e >/dev/null
  go build -mod=mod -tags tools -ldflags "-s -w -X $kwok/pkg/consts.Version=$KWOK_VERSION" -o "$dir/out/" \
    "$kwok/cmd/kwok" "$kwok/cmd/kwokctl" "$metrics/cmd/metrics-server"
  mv "$dir/out/kwok" "$bin/kwok-$KWOK_VERSION"
  mv "$dir/out/kwokctl" "$bin/kwokctl-$KWOK_VERSION"
  mv "$dir/out/metrics-server" "$bin/metrics-server-$METRICS_SERVER_VERSION"
  cd "$work" && rm -rf "$dir"
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
# In the order `make test` needs them while it builds them in the background: the cluster's, which
# every test after the cluster waits for, then helm for the chart's tests, then what the suites
# that run beside the cluster's use (kube-score, and versitygw for the backup suite).
[ ${#tools[@]} -gt 0 ] || tools=(etcd kubernetes kwok metrics-server node coredns helm kube-score versitygw)
for tool in "${tools[@]}"; do
  case $tool in
    kubernetes) timed_build "kubernetes $KUBERNETES_VERSION" "$bin/.kubernetes-$KUBERNETES_VERSION" \
      build_kubernetes control-plane kube-apiserver kube-controller-manager kube-scheduler kubectl ;;
    node) timed_build "kubelet and kube-proxy $KUBERNETES_VERSION" "$bin/.node-$KUBERNETES_VERSION" \
      build_kubernetes node kubelet kube-proxy ;;
    coredns) timed_build "coredns $COREDNS_VERSION (the node's plugins)" "$bin/.coredns-node-$COREDNS_VERSION" build_coredns ;;
    etcd) timed_build "etcd $ETCD_VERSION" "$bin/.etcd-$ETCD_VERSION" build_etcd ;;
    kwok | metrics-server) timed_build "kwok $KWOK_VERSION and metrics-server $METRICS_SERVER_VERSION" \
      "$bin/.kwok-$KWOK_VERSION-metrics-server-$METRICS_SERVER_VERSION" build_kwok_and_metrics_server ;;
    helm) timed_build "helm $HELM_VERSION" "$bin/.helm-$HELM_VERSION" build_helm ;;
    kube-score) timed_build "kube-score $KUBE_SCORE_VERSION" "$bin/.kube-score-$KUBE_SCORE_VERSION" build_kube_score ;;
    versitygw) timed_build "versitygw $VERSITYGW_VERSION" "$bin/.versitygw-$VERSITYGW_VERSION" build_versitygw ;;
    *) echo "unknown tool: $tool" >&2; exit 2 ;;
  esac
done
echo "$bin"

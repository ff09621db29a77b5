#!/usr/bin/env bash
# Lints what we ship with kube-score (`make lint`, and hack/test.sh in CI): every child the
# operator renders for samples/*.yaml (`python -m taskmanager_operator.render`, no cluster
# needed) and the chart with its default values, plus any manifest FILE given. Any finding fails,
# warnings included; the checks we disagree with are skipped below, each with its reason.
#
# Usage: hack/kube-score.sh [FILE...]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
. "$repo/hack/versions.env"
py="$repo/.venv/bin/python"

# Built when missing, or waited for while `make test` builds them in the background; the script
# prints the directory it keeps the pinned binaries in (its log only when it fails).
build_log=$(mktemp)
if ! bin=$("$repo/hack/build-tools.sh" kube-score helm 2>"$build_log" | tail -n 1); then
  cat "$build_log" >&2
  rm -f "$build_log"
  echo "error: hack/build-tools.sh could not build kube-score and helm (see above)" >&2
  exit 1
fi
rm -f "$build_log"
kube_score="$bin/kube-score-$KUBE_SCORE_VERSION"
helm="$bin/helm-$HELM_VERSION"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m taskmanager_operator.render "$repo"/samples/*.yaml >"$work/children.yaml"
"$helm" template taskmanager-operator "$repo/charts/taskmanager-operator" \
  --namespace taskmanager-system >"$work/chart.yaml"

checks=(
  # No CPU limits, on purpose: throttling hurts the API's latency more than it protects (spec
  # resources.limits.cpu sets one); requests, memory and ephemeral-storage limits are still checked.
  --ignore-container-cpu-limit
  # Images are pinned by tag (spec.version, the chart's appVersion) and pulled IfNotPresent; Always
  # would make every pod start depend on the registry (the local node has none: it runs Never).
  --ignore-test container-image-pull-policy
  # The managed PostgreSQL and Redis run as uid/gid 999, which their official images own their
  # files with (and existing data volumes are owned by); the API and the operator run as 10001, which
  # tests/unit/test_hardening.py holds them to.
  --ignore-test container-security-context-user-group-id
  # The API pods spread over nodes and zones with topologySpreadConstraints (ScheduleAnyway), which
  # kube-score's pod-topology-spread-constraints checks; a required anti-affinity would leave pods
  # Pending on a cluster with fewer nodes than replicas, and spec.scheduling.affinity can add one.
  --ignore-test deployment-has-host-podantiaffinity
  # The managed Redis is recreated, never rolled: two Redis pods at once would split revocations
  # and rate limits between them.
  --ignore-test deployment-strategy
  # One managed Redis by design (above; its data is a cache the API refills), and one operator
  # replica by default: only the holder of the leader-election Lease acts. The API's replicas are
  # the TaskManager's (spec.replicas, 2 by default).
  --ignore-test deployment-replicas
  # Optional checks that hold for everything we render: kept that way.
  --enable-optional-test container-seccomp-profile
  --enable-optional-test container-ports-check
)

if ! "$kube_score" score --kubernetes-version "${KUBERNETES_VERSION%.*}" --exit-one-on-warning \
  --output-format ci "${checks[@]}" "$work/children.yaml" "$work/chart.yaml" "$@" >"$work/report"; then
  grep -v -e '^\[OK\]' -e '^\[SKIPPED\]' "$work/report" >&2 || cat "$work/report" >&2
  echo "error: kube-score found the above in the rendered children or the chart" >&2
  exit 1
fi
echo "kube-score $KUBE_SCORE_VERSION: no findings ($(grep -c '^\[OK\]' "$work/report") checks passed)"

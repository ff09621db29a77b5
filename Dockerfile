# One image, two programs, chosen by the command:
#   API (default):  python -m taskmanager_api serve --host 0.0.0.0 --port 8000
#   operator:       python -m taskmanager_operator ...
# It runs as UID 10001 with a read-only root filesystem: /tmp is the only writable path.
#
# BASE_IMAGE: a Debian image with python3 (>= 3.11) and its venv module; every stage uses the
# same one, because the virtualenv points at the base's interpreter. Trixie, for its PostgreSQL
# client (17): pg_dump refuses a server newer than itself, and the managed default is 16.
ARG BASE_IMAGE=python:3.13-slim-trixie

FROM ${BASE_IMAGE} AS builder
# A CA bundle for pip, for builders whose way to PyPI is an intercepting proxy. Unset, pip trusts
# its own bundle; it is a build argument so the file stays out of every layer.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1
WORKDIR /src

# Dependencies first, from the hash-pinned locks, so a code change reuses this layer. Wheels only:
# the slim base has no compiler. The runtime venv gets no pip: the build venv's pip fills it.
COPY requirements-build.lock requirements-runtime.lock ./
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
        -r requirements-build.lock \
    && python3 -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes \
        --no-deps --only-binary=:all: -r requirements-runtime.lock

# The project's wheel, built with the pinned backend (no isolated, unpinned hatchling download).
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY app/ app/
# Installed into a directory of its own, which the runtime stage copies: a COPY's cache follows the
# files' content, where a RUN with a bind mount of this stage would reuse a stale layer.
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /src/dist . \
    && /opt/build/bin/pip install --no-cache-dir --no-deps --no-index --target /opt/project \
        /src/dist/*.whl


FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="taskmanager-operator" \
      org.opencontainers.image.description="The taskmanager operator (kopf) and the task-manager API (FastAPI) it runs" \
      org.opencontainers.image.licenses="Apache-2.0"

# postgresql-client (pg_dump, psql) is for the backup jobs, which run this image too; a test
# checks its major covers the managed database's default. Debian's package is not pinned to a
# version: the base image is a build argument, and the version a pin
# could name differs between bases and disappears from the mirror with each security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 taskmanager \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin taskmanager

COPY --from=builder /opt/venv /opt/venv
# The project goes in a layer of its own: a code change ships a few hundred kB, not the
# dependencies again.
COPY --from=builder /opt/project /opt/project

# The bytecode was compiled at install time; a read-only root could not take more. HOME and the
# working directory are /tmp so whatever a tool writes (a relative SQLite file, psql's history)
# lands on the one writable path.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/project \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
VOLUME ["/tmp"]

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: Kubernetes ignores it, and one probe cannot fit both programs; the API's
# probes are GET /health (liveness) and GET /ready (readiness).
CMD ["python", "-m", "taskmanager_api", "serve", "--host", "0.0.0.0", "--port", "8000"]

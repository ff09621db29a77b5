# taskmanager-operator: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

include hack/versions.env

UV_VERSION := 0.13.9
LOCAL := .local
UV := $(LOCAL)/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# `make run` uses the cluster KUBECONFIG names; without one it starts and uses the local cluster.
ifeq ($(origin KUBECONFIG),undefined)
KUBECONFIG := $(CURDIR)/$(LOCAL)/kubeconfig
RUN_NEEDS_LOCAL_CLUSTER := cluster-up
endif
export KUBECONFIG
export PATH := $(CURDIR)/$(LOCAL)/bin:$(PATH)
# CLUSTER=kind uses kind on a machine with Docker instead (not exercised by our CI).
CLUSTER ?= local

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
$(UV):
	@python3 -m venv $(LOCAL)/uv || { echo "error: python3 >= 3.11 with the venv module is needed (Debian: apt-get install python3-venv)" >&2; exit 1; }
	@$(LOCAL)/uv/bin/pip install -q "uv==$(UV_VERSION)"

$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	@[ -d $(VENV) ] || $(UV) venv -q $(VENV)
	@$(UV) pip sync -q --python $(PY) --require-hashes requirements.lock
	@$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

.PHONY: install
install: $(VENV)/.installed system-deps ## Install Python dependencies (from the lock) and the Debian packages tests need.

.PHONY: system-deps
system-deps:
	@hack/install-system-deps.sh

.PHONY: lock
lock: | $(UV) ## Re-resolve requirements.lock from pyproject.toml.
	$(UV) pip compile pyproject.toml --group dev --universal --python-version 3.11 --generate-hashes -q -o requirements.lock
	UV=$(UV) hack/image/lock.sh

.PHONY: lint
lint: $(VENV)/.installed ## Run ruff (check and format), mypy --strict, and kube-score on what we render.
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	hack/kube-score.sh

.PHONY: fmt
fmt: $(VENV)/.installed ## Format and auto-fix with ruff.
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

.PHONY: test
test: ## Install what is missing, lint, build the tools, start the cluster, run every test (the suites that need no cluster beside the cluster's), stop what it started.
	@hack/test.sh

##@ Local cluster
.PHONY: tools
tools: ## Build (once per version, cached in ~/.cache/taskmanager-operator) the Kubernetes binaries.
	@hack/build-tools.sh >/dev/null

.PHONY: cluster-up
cluster-up: ## Start the local cluster (idempotent); kubeconfig in .local/kubeconfig.
ifeq ($(CLUSTER),kind)
	@kind get clusters | grep -qx taskmanager || kind create cluster --name taskmanager --kubeconfig $(KUBECONFIG)
else
	@hack/build-tools.sh >/dev/null
	@hack/cluster.sh up
endif

.PHONY: cluster-down
cluster-down: ## Remove the local cluster and every process it started.
ifeq ($(CLUSTER),kind)
	@kind delete cluster --name taskmanager
else
	@hack/cluster.sh down
endif

##@ Run
.PHONY: run
run: $(VENV)/.installed $(RUN_NEEDS_LOCAL_CLUSTER) ## Start the cluster (unless KUBECONFIG is set), run the operator, apply the sample.
	@hack/run.sh

.PHONY: run-app
run-app: $(VENV)/.installed ## Run the API alone on the embedded SQLite database (http://127.0.0.1:8000/docs).
	TASKMANAGER_ENVIRONMENT=development TASKMANAGER_SQLITE_PATH=$(LOCAL)/taskmanager.db $(PY) -m taskmanager_api serve --migrate --port 8000

##@ Benchmarks
.PHONY: bench-api
bench-api: install ## Benchmark the API against bare Starlette+asyncpg (BEFORE=<rev> adds that revision; PAIRS=n); writes docs/benchmarks.md.
	@command -v hey >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq hey >/dev/null; } || \
	  { echo "error: hey is needed (Debian: apt-get install -y hey)" >&2; exit 1; }
	$(PY) -m bench.run $(if $(BEFORE),--before $(BEFORE)) $(if $(PAIRS),--pairs $(PAIRS))

.PHONY: bench-backup
bench-backup: install ## Benchmark backup create/restore against plain pg_dump/pg_restore, and the RTO (TASKS=n, PAIRS=n); writes docs/benchmarks.md.
	$(PY) -m bench.backup $(if $(TASKS),--tasks $(TASKS)) $(if $(PAIRS),--pairs $(PAIRS))

.PHONY: bench-operator
bench-operator: install ## The operator at N TaskManagers against applying their children directly (NS="10 100", BEFORE=<rev>, BEFORE_NS="10 100", IDLE=s); makes the cluster it needs; writes docs/benchmarks.md.
	@# The plot's library is the bench extra's, which the lock (the tests' environment) leaves out.
	@$(UV) pip install -q --python $(PY) --no-build-isolation -e '.[bench]'
	$(PY) -m bench.operator_scale $(if $(NS),--ns "$(NS)") $(if $(BEFORE),--before $(BEFORE)) \
	  $(if $(BEFORE_NS),--before-ns "$(BEFORE_NS)") \
	  $(if $(IDLE),--idle-seconds $(IDLE)) $(if $(KEEP_CLUSTER),--keep-cluster) \
	  $(if $(KEEP_OTHER_NS),--keep-other-ns "$(KEEP_OTHER_NS)")

.PHONY: bench-operator-kills
bench-operator-kills: install ## The operator SIGKILLed at random moments while TaskManagers converge, TRIALS times (default 20); writes docs/benchmarks.md.
	$(PY) -m bench.operator_kills $(if $(TRIALS),--trials $(TRIALS)) $(if $(KEEP_CLUSTER),--keep-cluster)

##@ Generated files
.PHONY: manifests
manifests: $(VENV)/.installed ## Generate the CRD in crds/ from the pydantic models, the chart's copy and its README's values.
	@$(PY) -m taskmanager_operator.api.crd crds
	@mkdir -p charts/taskmanager-operator/files/crds
	@rm -f charts/taskmanager-operator/files/crds/*.yaml
	@cp crds/*.yaml charts/taskmanager-operator/files/crds/
	@$(PY) -m taskmanager_operator.monitoring.operator_rules charts/taskmanager-operator/files/monitoring
	@$(PY) -m tests.unit.test_chart_readme

##@ Image
.PHONY: image
image: ## Build the container image taskmanager-operator:dev with podman (IMAGE=, BASE_IMAGE= override).
	@hack/image/build.sh

##@ Helm chart
CHART := charts/taskmanager-operator

.PHONY: chart-lint
chart-lint: ## helm lint --strict the chart (helm comes from `make tools`).
	@command -v helm >/dev/null || { echo "error: helm is missing: run make tools" >&2; exit 1; }
	helm lint --strict $(CHART)

.PHONY: chart-test
chart-test: $(VENV)/.installed ## Chart tests: render, schema, RBAC, install/upgrade/uninstall on the local cluster.
	$(PY) -m pytest tests/chart

"""TaskManager v1alpha1: spec and status.

Field descriptions become the CRD's descriptions (`kubectl explain`), defaults become schema
defaults, and `x-kubernetes-validations` carry the CEL rules, so the API server rejects bad input at
`kubectl apply` time. The CRD in crds/ is generated from these models by `make manifests`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from taskmanager_api.metric_contract import LATENCY_BUCKETS

GROUP = "taskmanager.dev"
VERSION = "v1alpha1"
KIND = "TaskManager"
PLURAL = "taskmanagers"
SINGULAR = "taskmanager"
SHORT_NAMES = ["tm"]

# The API image when spec.image is unset (spec.version is its tag). One image holds the operator
# and the API, so this is the chart's image.repository and what `make image` builds; the operator
# settings default to it and tests/unit/test_settings_contract.py checks the chart, the Makefile,
# hack/image/build.sh and the Dockerfile against it.
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/taskmanager-operator/taskmanager-operator"

# Kubernetes resource quantities (the API server's own grammar, simplified to what people write).
QUANTITY_PATTERN = r"^([+]?[0-9]+(\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$"
# A TTL as one number and one unit; CEL below turns it into a duration to compare. The API's
# settings parse this grammar to the same seconds (tests/unit/test_settings_contract.py).
TTL_PATTERN = r"^[1-9][0-9]*(s|m|h|d)$"
TTL_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# The bounds the CEL rules of Auth enforce, named so the contract test checks the same numbers.
ACCESS_TOKEN_TTL_MIN_SECONDS = 60
ACCESS_TOKEN_TTL_MAX_SECONDS = 86400
REFRESH_TOKEN_TTL_MAX_DAYS = 90
SEMVER_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a pattern for key names
# A label key (and so a taint key), a qualified name: an optional DNS subdomain and `/`, a name.
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def ttl_seconds(field: str) -> str:
    """CEL: a TTL like `15m` or `7d` in seconds (duration() has no day unit and costs more)."""
    # A chain of ternaries over the units; a unit the chain does not name is seconds.
    units = "".join(
        f"{field}.endsWith('{unit}') ? {seconds} : "
        for unit, seconds in TTL_UNIT_SECONDS.items()
        if seconds != 1
    )
    return f"(int({field}.substring(0, {field}.size() - 1)) * ({units}1))"


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; fieldPath points kubectl's error at the field."""
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


def cel_rules(*rules: JsonDict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": list(rules)})


class Model(BaseModel):
    """camelCase on the wire, unknown fields rejected, descriptions from the field docs."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
# Label keys and values as Kubernetes takes them (the API server checks them again on each object).
LabelMap = Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=32)]


class Requests(Model):
    cpu: Quantity = "100m"
    """CPU, in cores or millicores (`500m`)."""
    memory: Quantity = "128Mi"
    """Memory, in bytes with a binary suffix (`256Mi`)."""


class Limits(Model):
    cpu: Quantity | None = None
    """CPU limit; none by default, since throttling hurts latency more than it protects."""
    memory: Quantity = "256Mi"
    """Memory limit; a pod above it is restarted."""


class Resources(Model):
    requests: Requests = Field(default_factory=Requests)
    """What the scheduler reserves for each API pod; the HPA's utilization is relative to it."""
    limits: Limits = Field(default_factory=Limits)
    """The most each API pod may use."""


class Autoscaling(Model):
    model_config = cel_rules(
        cel(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must be less than or equal to maxReplicas",
            ".minReplicas",
        )
    )

    enabled: bool = False
    """Run a HorizontalPodAutoscaler; spec.replicas is then ignored."""
    min_replicas: int = Field(default=2, ge=1, le=1000)
    """Fewest API pods the autoscaler keeps."""
    max_replicas: int = Field(default=10, ge=1, le=1000)
    """Most API pods the autoscaler may run."""
    target_cpu_utilization_percentage: int = Field(
        default=70, ge=1, le=100, alias="targetCPUUtilizationPercentage"
    )
    """Average CPU use, in percent of the request, that the autoscaler aims for."""
    target_memory_utilization_percentage: int | None = Field(default=80, ge=1, le=100)
    """Average memory use, in percent of the request, that the autoscaler aims for."""
    target_requests_per_second: int | None = Field(default=100, ge=1, le=1_000_000)
    """Requests per second per pod that the autoscaler aims for, through the custom metrics API
    (a Pods metric `taskmanager_http_requests_per_second`, served by an adapter such as
    prometheus-adapter). Used only while that API serves the metric: an autoscaler whose metric
    is missing never scales down, so it is left out then, with a condition saying so."""
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    """How long load must stay low before the autoscaler removes pods."""


class Toleration(Model):
    """A core/v1 Toleration: the pods may run on nodes with a matching taint."""

    model_config = cel_rules(
        cel(
            "has(self.key) || self.operator == 'Exists'",
            "a toleration without a key must have operator Exists (it then tolerates every taint)",
            ".operator",
        ),
        cel(
            "self.operator != 'Exists' || !has(self.value)",
            "a toleration with operator Exists must not have a value",
            ".value",
        ),
        cel(
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds is allowed only with effect NoExecute",
            ".tolerationSeconds",
        ),
    )

    key: str | None = Field(default=None, pattern=QUALIFIED_NAME_PATTERN, max_length=316)
    """Taint key the toleration matches; unset (with operator Exists) matches every taint."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Equal matches a taint with this key and value; Exists matches any value of the key."""
    value: str | None = Field(default=None, pattern=LABEL_VALUE_PATTERN, max_length=63)
    """Taint value the toleration matches (operator Equal only)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; every effect when unset."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """Seconds a pod stays on a node after a matching NoExecute taint; forever when unset."""


class Affinity(Model):
    """A core/v1 Affinity; its three parts are free-form objects, kept as written."""

    node_affinity: dict[str, Any] | None = None
    """A core/v1 NodeAffinity: the nodes the pods must or would rather run on."""
    pod_affinity: dict[str, Any] | None = None
    """A core/v1 PodAffinity: the pods these pods must or would rather run beside."""
    pod_anti_affinity: dict[str, Any] | None = None
    """A core/v1 PodAntiAffinity: the pods these pods must or would rather keep away from."""


class Scheduling(Model):
    """Where the pods run, as a pod spec's fields of the same names."""

    node_selector: LabelMap = {}
    """Labels a node must have for the pods to run on it (`disktype: ssd`)."""
    tolerations: list[Toleration] = Field(default=[], max_length=32)
    """Taints the pods tolerate."""
    affinity: Affinity | None = None
    """Node affinity, pod affinity and pod anti-affinity, as in a pod spec. Their contents are
    not checked at `kubectl apply`: the API server checks them when the operator applies a
    workload, and a mistake fails the reconcile (the operator's log says why) until corrected."""
    priority_class_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    """PriorityClass of the pods; the cluster's default priority when unset."""


class SecretKeyRef(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of a Secret in the TaskManager's namespace."""
    key: str = Field(pattern=SECRET_KEY_PATTERN, min_length=1, max_length=253)
    """Key in that Secret."""


class External(Model):
    url_secret_ref: SecretKeyRef
    """The Secret key that holds the connection URL (it carries the password)."""


class ManagedDatabase(Model):
    storage: Quantity = "1Gi"
    """Size of the PostgreSQL data volume."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass of the data volume; the cluster's default when unset."""
    image: str = Field(default="postgres:16-bookworm", min_length=1, max_length=512)
    """PostgreSQL image."""
    scheduling: Scheduling | None = None
    """Where the PostgreSQL pod runs. When set it replaces spec.scheduling for this pod as a
    whole (fields left out here are not taken from spec.scheduling); unset, spec.scheduling
    applies."""


class Database(Model):
    model_config = cel_rules(
        cel(
            "has(self.managed) != has(self.external)",
            "exactly one of database.managed and database.external must be set",
        )
    )

    managed: ManagedDatabase | None = None
    """Run PostgreSQL for this TaskManager (a StatefulSet with a volume)."""
    external: External | None = None
    """Use an existing PostgreSQL; its URL comes from a Secret."""


class ManagedRedis(Model):
    image: str = Field(default="redis:7-bookworm", min_length=1, max_length=512)
    """Redis image."""
    scheduling: Scheduling | None = None
    """Where the Redis pod runs. When set it replaces spec.scheduling for this pod as a whole
    (fields left out here are not taken from spec.scheduling); unset, spec.scheduling applies."""


class Redis(Model):
    model_config = cel_rules(
        cel(
            "has(self.managed) != has(self.external)",
            "exactly one of redis.managed and redis.external must be set",
        )
    )

    managed: ManagedRedis | None = None
    """Run Redis for this TaskManager (a Deployment; the data is a cache and revocations)."""
    external: External | None = None
    """Use an existing Redis; its URL comes from a Secret."""


class Auth(Model):
    model_config = cel_rules(
        cel(
            f"{ttl_seconds('self.accessTokenTTL')} >= {ACCESS_TOKEN_TTL_MIN_SECONDS} && "
            f"{ttl_seconds('self.accessTokenTTL')} <= {ACCESS_TOKEN_TTL_MAX_SECONDS}",
            "accessTokenTTL must be between 1m and 24h",
            ".accessTokenTTL",
        ),
        cel(
            f"{ttl_seconds('self.refreshTokenTTL')} > {ttl_seconds('self.accessTokenTTL')}"
            f" && {ttl_seconds('self.refreshTokenTTL')} <= "
            f"{REFRESH_TOKEN_TTL_MAX_DAYS} * {TTL_UNIT_SECONDS['d']}",
            "refreshTokenTTL must be longer than accessTokenTTL and at most 90d",
            ".refreshTokenTTL",
        ),
    )

    access_token_ttl: str = Field(
        default="15m", pattern=TTL_PATTERN, max_length=10, alias="accessTokenTTL"
    )
    """Lifetime of access tokens: a number and a unit, s, m, h or d (`15m`)."""
    refresh_token_ttl: str = Field(
        default="7d", pattern=TTL_PATTERN, max_length=10, alias="refreshTokenTTL"
    )
    """Lifetime of refresh tokens (`7d`); longer than the access token's."""
    signing_key_secret_ref: SecretKeyRef | None = None
    """A Secret key holding the JWT signing key; the operator generates one when unset."""


class Ingress(Model):
    model_config = cel_rules(
        cel("!self.enabled || has(self.host)", "ingress.host is required when enabled")
    )

    enabled: bool = False
    """Expose the API through an Ingress."""
    class_name: str | None = Field(default=None, max_length=253)
    """IngressClass to use; the cluster's default when unset."""
    host: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Host name the API answers on."""
    tls_secret_name: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Secret with the TLS certificate for the host; TLS is on when set."""


class NetworkPolicy(Model):
    enabled: bool = True
    """Allow only the API port in, and only the database, Redis and DNS out."""


class PodDisruptionBudget(Model):
    max_unavailable: int = Field(default=1, ge=1)
    """API pods that a voluntary disruption (a node drain) may take down at once."""


class RateLimits(Model):
    requests_per_minute: int = Field(default=100, ge=1, le=1_000_000)
    """Requests per minute per authenticated user."""
    login_per_minute: int = Field(default=5, ge=1, le=10_000)
    """Login attempts per minute per user name."""


# Prometheus durations as the monitoring objects take them (`30s`, `1m`).
SCRAPE_INTERVAL_PATTERN = r"^[1-9][0-9]*(s|m)$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
# Where an alert's runbook_url points when spec.monitoring.alerts.runbookBaseURL is unset: the
# runbooks in the repository's docs/runbooks/, one <Alert>.md each.
DEFAULT_RUNBOOK_BASE_URL = (
    "https://github.com/taskmanager-operator/taskmanager-operator/blob/main/docs/runbooks/"
)


class Alerts(Model):
    enabled: bool = True
    """Generate the alerting rules (the recording rules the dashboard reads are kept either way)."""
    labels: LabelMap = {}
    """Extra labels on every alert, for Alertmanager's routing (`team: payments`)."""
    runbook_base_url: str = Field(
        default=DEFAULT_RUNBOOK_BASE_URL,
        min_length=1,
        max_length=512,
        pattern=r"^https?://",
        alias="runbookBaseURL",
    )
    """Each alert's runbook_url is this plus `<AlertName>.md`; point it at a mirror of the
    runbooks when the default is out of reach."""
    error_rate_percent: float = Field(default=5.0, gt=0, le=100)
    """TaskManagerHighErrorRate fires when more than this percent of requests fail with 5xx."""
    latency_p95_seconds: float = Field(default=0.5, gt=0, le=60)
    """TaskManagerHighLatency fires when the 95th percentile latency is above this."""
    min_requests_per_second: float = Field(default=1.0, ge=0, le=1_000_000)
    """Traffic guard: the error-rate and latency alerts stay quiet below this request rate."""
    db_pool_saturation_percent: int = Field(default=90, ge=1, le=100)
    """TaskManagerDatabasePoolSaturated fires above this use of the connection pool."""
    memory_percent: int = Field(default=90, ge=1, le=100)
    """TaskManagerMemoryNearLimit fires when a pod uses more than this percent of its limit."""
    cpu_throttled_percent: int = Field(default=25, ge=1, le=100)
    """TaskManagerCPUThrottled fires when more than this percent of CPU periods are throttled."""
    restarts_per_hour: int = Field(default=3, ge=1, le=1000)
    """TaskManagerPodsRestarting fires at this many container restarts within an hour."""


class Slo(Model):
    model_config = cel_rules(
        cel(
            f"self.latencyThresholdSeconds in {list(LATENCY_BUCKETS)}",
            "latencyThresholdSeconds must be one of the API's latency buckets: "
            + ", ".join(f"{bound:g}" for bound in LATENCY_BUCKETS),
            ".latencyThresholdSeconds",
        )
    )

    availability_percent: float = Field(default=99.9, ge=50, lt=100)
    """Share of requests (probes and scrapes excluded) that must not fail with 5xx, over 30 days."""
    latency_threshold_seconds: float = Field(default=0.25, gt=0, le=10)
    """A request slower than this counts against the latency objective; one of the API's latency
    buckets (0.002 to 10)."""
    latency_percent: float = Field(default=99.0, ge=50, lt=100)
    """Share of requests that must be faster than latencyThresholdSeconds, over 30 days."""


class Dashboards(Model):
    enabled: bool = True
    """A Grafana dashboard in a ConfigMap labelled for Grafana's sidecar, and a GrafanaDashboard
    when grafana-operator's API is served."""
    folder: str | None = Field(default=None, min_length=1, max_length=128)
    """Grafana folder for the dashboard (the sidecar's folder annotation)."""
    grafana_instance_labels: LabelMap = Field(default={"dashboards": "grafana"})
    """Labels of the Grafana instances a GrafanaDashboard is for (its instanceSelector)."""


class Monitoring(Model):
    enabled: bool = True
    """Create the monitoring objects below; false removes them all."""
    scrape: Literal["ServiceMonitor", "PodMonitor", "None"] = "ServiceMonitor"
    """How Prometheus (through prometheus-operator) finds the API pods: a ServiceMonitor, a
    PodMonitor, or None for no scrape object."""
    interval: str = Field(default="30s", pattern=SCRAPE_INTERVAL_PATTERN, max_length=8)
    """Scrape interval (`30s`, `1m`)."""
    labels: LabelMap = {}
    """Extra labels on the scrape object, the PrometheusRule and the dashboards. kube-prometheus-
    stack selects only objects labelled `release: <its release name>`."""
    alerts: Alerts = Field(default_factory=Alerts)
    """Alerting rules and their thresholds."""
    slo: Slo = Field(default_factory=Slo)
    """Service level objectives the burn-rate alerts and the dashboard measure."""
    dashboards: Dashboards = Field(default_factory=Dashboards)
    """Grafana dashboards."""


class TaskManagerSpec(Model):
    """Desired state of a task-manager API installation."""

    version: str = Field(default="0.1.0", pattern=SEMVER_PATTERN, max_length=64)
    """Version of the API to run; it picks the image tag unless image is set."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Full image reference; overrides the one derived from version."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """When the kubelet pulls the image."""
    replicas: int = Field(default=2, ge=0, le=1000)
    """Number of API pods while autoscaling is off (the scale subresource sets it)."""
    resources: Resources = Field(default_factory=Resources)
    """CPU and memory for each API pod."""
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    """HorizontalPodAutoscaler settings."""
    database: Database = Field(
        default_factory=lambda: Database(managed=ManagedDatabase()),
        json_schema_extra={"default": {"managed": {}}},
    )
    """Where the API keeps its data: managed by the operator, or external."""
    redis: Redis = Field(
        default_factory=lambda: Redis(managed=ManagedRedis()),
        json_schema_extra={"default": {"managed": {}}},
    )
    """Where the API keeps its cache, revocations and rate limits."""
    auth: Auth = Field(default_factory=Auth)
    """Token lifetimes and the signing key."""
    ingress: Ingress = Field(default_factory=Ingress)
    """Ingress for the API."""
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    """NetworkPolicy around the API pods."""
    pod_disruption_budget: PodDisruptionBudget = Field(default_factory=PodDisruptionBudget)
    """PodDisruptionBudget for the API pods (created when more than one pod can run)."""
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    """Request rate limits the API enforces."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """Prometheus scraping, alerting and recording rules, and Grafana dashboards."""
    scheduling: Scheduling = Field(default_factory=Scheduling)
    """Where the pods run: the API pods, the migration Job's, and the managed PostgreSQL's and
    Redis's unless their own scheduling replaces it."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level of the API."""
    paused: bool = False
    """Stop all changes to the children (for maintenance); status says so."""


class Condition(Model):
    type: str = Field(max_length=316)
    """Type of condition, such as Ready."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str = Field(max_length=1024)
    """Machine-readable CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation the condition was computed from."""


class MonitoringStatus(Model):
    objects: list[str] = []
    """The monitoring objects that exist, as `Kind/name`."""
    selected_by: list[str] = []
    """The Prometheus objects (`namespace/name`) whose selectors pick up the scrape object or
    the rules."""


class TaskManagerStatus(Model):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    """The spec generation the status describes."""
    phase: Literal["Pending", "Progressing", "Ready", "Degraded", "Failed", "Paused"] | None = None
    """Summary: Pending, Progressing, Ready, Degraded, Failed or Paused."""
    conditions: list[Condition] = []
    """Ready, Progressing, Degraded, DatabaseReady, MigrationsApplied and others."""
    replicas: int | None = None
    """API pods that exist."""
    ready_replicas: int | None = None
    """API pods that are ready."""
    selector: str | None = None
    """Label selector of the API pods (for the scale subresource)."""
    version: str | None = None
    """Version of the API that is serving."""
    endpoint: str | None = None
    """In-cluster URL of the API."""
    monitoring: MonitoringStatus | None = None
    """The monitoring objects, and which Prometheus picks them up."""


def to_manifest(model: BaseModel) -> dict[str, Any]:
    """A model as it appears in a Kubernetes object: camelCase keys, unset optionals left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)

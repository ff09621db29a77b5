"""TaskManager v1alpha1: spec and status.

Field descriptions become the CRD's descriptions (`kubectl explain`), defaults become schema
defaults, and `x-kubernetes-validations` carry the CEL rules, so the API server rejects bad input at
`kubectl apply` time. The CRD in crds/ is generated from these models by `make manifests`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from taskmanager_api.core.config import (
    DEFAULT_CORS_HEADERS,
    DEFAULT_CORS_MAX_AGE_SECONDS,
    DEFAULT_CORS_METHODS,
    DEFAULT_HSTS_MAX_AGE_SECONDS,
    CorsMaxAgeSeconds,
    CorsOrigin,
    HeaderName,
    HstsMaxAgeSeconds,
    HttpMethod,
)
from taskmanager_api.metric_contract import LATENCY_BUCKETS
from taskmanager_operator.api.cron import CRON_MAX_LENGTH, CRON_PATTERN, time_zones

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
# How often a generated signing key may be rotated: at least hourly, at most yearly.
ROTATION_INTERVAL_MIN_SECONDS = 3600
ROTATION_INTERVAL_MAX_DAYS = 365
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
# The labels the operator puts on every pod it makes (builders/common.py `labels`; a unit test
# holds the two together), and the prefix of its own annotations: spec.podTemplate sets neither.
OPERATOR_POD_LABELS = tuple(
    f"app.kubernetes.io/{name}"
    for name in ("name", "instance", "component", "part-of", "managed-by", "version")
)
OPERATOR_KEY_PREFIX = f"{GROUP}/"
# What the API server allows for all of an object's annotations together.
ANNOTATIONS_MAX_BYTES = 256 * 1024


def ttl_timedelta(ttl: str) -> timedelta:
    """A TTL of TTL_PATTERN (`15m`, `7d`) as a duration, as the CEL rules read it."""
    return timedelta(seconds=int(ttl[:-1]) * TTL_UNIT_SECONDS[ttl[-1]])


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
AnnotationMap = Annotated[
    dict[str, Annotated[str, Field(max_length=ANNOTATIONS_MAX_BYTES)]], Field(max_length=64)
]


class Requests(Model):
    cpu: Quantity = "100m"
    """CPU, in cores or millicores (`500m`)."""
    memory: Quantity = "128Mi"
    """Memory, in bytes with a binary suffix (`256Mi`)."""
    # Every container's root filesystem is read-only, so what it writes to the node's disk is
    # its logs (the kubelet keeps about 50Mi of them) and its emptyDir scratch space (64Mi at most
    # for the API's /tmp): the limit leaves room for both.
    ephemeral_storage: Quantity = Field(default="64Mi", alias="ephemeral-storage")
    """Node-local disk for the container's logs and scratch space (emptyDir volumes)."""


class Limits(Model):
    cpu: Quantity | None = None
    """CPU limit; none by default, since throttling hurts latency more than it protects."""
    memory: Quantity = "256Mi"
    """Memory limit; a pod above it is restarted."""
    ephemeral_storage: Quantity = Field(default="256Mi", alias="ephemeral-storage")
    """Node-local disk limit; a pod that writes more is evicted."""


def quantity_at_most(smaller: str, larger: str) -> str:
    """CEL: the quantity in one field is at most the one in another."""
    return f"quantity({smaller}).compareTo(quantity({larger})) <= 0"


class Resources(Model):
    """Requests and limits of a container, as in its resources."""

    # The API server refuses such a pod only when the operator applies its workload: refused here
    # instead, at `kubectl apply`. In CEL a field name's `-` is spelled `__dash__`.
    model_config = cel_rules(
        cel(
            quantity_at_most("self.requests.memory", "self.limits.memory"),
            "requests.memory must be at most limits.memory",
            ".requests.memory",
        ),
        cel(
            quantity_at_most(
                "self.requests.ephemeral__dash__storage", "self.limits.ephemeral__dash__storage"
            ),
            "requests.ephemeral-storage must be at most limits.ephemeral-storage",
            ".requests",
        ),
        cel(
            "!has(self.limits.cpu) || " + quantity_at_most("self.requests.cpu", "self.limits.cpu"),
            "requests.cpu must be at most limits.cpu",
            ".requests.cpu",
        ),
    )

    requests: Requests = Field(default_factory=Requests)
    """What the scheduler reserves for the pod."""
    limits: Limits = Field(default_factory=Limits)
    """The most the pod may use."""


# The least memory limit of the managed Redis (its maxmemory is REDIS_MAXMEMORY_PERCENT of it).
REDIS_MIN_MEMORY_LIMIT = "64Mi"
REDIS_MAXMEMORY_PERCENT = 75


# The managed PostgreSQL's and Redis's resources: the same fields, their own defaults.
class DatabaseRequests(Requests):
    memory: Quantity = "256Mi"
    """Memory, in bytes with a binary suffix (`256Mi`)."""


class DatabaseLimits(Limits):
    memory: Quantity = "512Mi"
    """Memory limit; PostgreSQL is restarted above it."""


class DatabaseResources(Resources):
    requests: DatabaseRequests = Field(default_factory=DatabaseRequests)
    """What the scheduler reserves for the PostgreSQL pod."""
    limits: DatabaseLimits = Field(default_factory=DatabaseLimits)
    """The most the PostgreSQL pod may use."""


class CacheRequests(Requests):
    cpu: Quantity = "50m"
    """CPU, in cores or millicores (`500m`)."""
    memory: Quantity = "64Mi"
    """Memory, in bytes with a binary suffix (`256Mi`)."""


class CacheResources(Resources):
    requests: CacheRequests = Field(default_factory=CacheRequests)
    """What the scheduler reserves for the Redis pod."""
    limits: Limits = Field(default_factory=Limits)
    """The most the Redis pod may use. Redis's maxmemory is 75 % of the memory limit (the rest is
    its own overhead), so it evicts keys with a TTL before it is OOM-killed; the memory limit is
    at least 64Mi."""


class ScalingPolicy(Model):
    """One limit on how fast the autoscaler changes the number of pods (an autoscaling/v2
    HPAScalingPolicy)."""

    type: Literal["Pods", "Percent"]
    """Pods: at most `value` pods per period; Percent: at most `value` percent of the pods there
    are at the start of the period."""
    value: int = Field(ge=1, le=10_000)
    """How many pods, or what percent of them, per period."""
    period_seconds: int = Field(default=60, ge=1, le=1800)
    """How long the period is."""


# The bounds the API server puts on an HPA's behavior, so a bad one fails at `kubectl apply`
# rather than in the operator's apply of the HPA.
StabilizationWindowSeconds = Annotated[int, Field(ge=0, le=3600)]
ScalingPolicies = Annotated[list[ScalingPolicy], Field(min_length=1, max_length=10)]


class ScalingRules(Model):
    """How fast the autoscaler may change the number of pods in one direction (an autoscaling/v2
    HPAScalingRules); scaleUp and scaleDown differ only in their defaults."""

    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    """Which policy limits the change when there are several: Max the one that allows the largest
    change, Min the smallest; Disabled stops the autoscaler from scaling in this direction."""


class ScaleUp(ScalingRules):
    stabilization_window_seconds: StabilizationWindowSeconds = 30
    """The autoscaler adds pods for the lowest number it wanted over this many seconds, so a
    short burst does not add pods."""
    policies: ScalingPolicies = [
        ScalingPolicy(type="Percent", value=100),
        ScalingPolicy(type="Pods", value=2),
    ]
    """How fast pods are added: by default the pods may double, or grow by 2, each minute,
    whichever is more (selectPolicy Max)."""


class ScaleDown(ScalingRules):
    stabilization_window_seconds: StabilizationWindowSeconds = 300
    """The autoscaler removes pods only down to the highest number it wanted over this many
    seconds, so pods are not removed in a lull and added again."""
    policies: ScalingPolicies = [ScalingPolicy(type="Percent", value=50)]
    """How fast pods are removed: by default at most half of them each minute."""


class ScalingBehavior(Model):
    """The autoscaling/v2 HorizontalPodAutoscaler's behavior: how fast it scales each way."""

    scale_up: ScaleUp = Field(default_factory=ScaleUp)
    """Scaling up: fast, so a rise in load is met within a minute or two."""
    scale_down: ScaleDown = Field(default_factory=ScaleDown)
    """Scaling down: slow, so pods are not removed in a lull and added back moments later."""


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
    behavior: ScalingBehavior = Field(default_factory=ScalingBehavior)
    """How fast the autoscaler adds and removes pods, as the HorizontalPodAutoscaler's
    spec.behavior."""


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


class PodTemplate(Model):
    """Extra metadata for the API pods. The operator's own keys are refused: the labels it puts
    on every pod (the Deployment selects its pods by them) and any taskmanager.dev/ key (such as
    the rollout checksum). A change rolls the pods, as any change to their template does."""

    model_config = cel_rules(
        cel(
            f"self.labels.all(k, !(k in {list(OPERATOR_POD_LABELS)})"
            f" && !k.startsWith('{OPERATOR_KEY_PREFIX}'))",
            "podTemplate.labels must not set a label the operator sets ("
            + ", ".join(OPERATOR_POD_LABELS)
            + f") nor any {OPERATOR_KEY_PREFIX} key",
            ".labels",
        ),
        cel(
            f"self.annotations.all(k, !k.startsWith('{OPERATOR_KEY_PREFIX}'))",
            f"podTemplate.annotations must not set a {OPERATOR_KEY_PREFIX} key: the operator "
            "owns them (taskmanager.dev/rollout-checksum rolls the pods)",
            ".annotations",
        ),
    )

    labels: LabelMap = {}
    """Labels added to the API pods (`sidecar.istio.io/inject: "true"`)."""
    annotations: dict[str, Annotated[str, Field(max_length=ANNOTATIONS_MAX_BYTES)]] = Field(
        default={}, max_length=64
    )
    """Annotations added to the API pods (`vault.hashicorp.com/agent-inject: "true"`)."""


class ImagePullSecret(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of a Secret of type kubernetes.io/dockerconfigjson in the TaskManager's namespace."""


class SecretKeyRef(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of a Secret in the TaskManager's namespace."""
    key: str = Field(pattern=SECRET_KEY_PATTERN, min_length=1, max_length=253)
    """Key in that Secret."""


class External(Model):
    url_secret_ref: SecretKeyRef
    """The Secret key that holds the connection URL (it carries the password)."""


# The managed PostgreSQL's default image. Its major must not be newer than the API image's
# pg_dump (17), which backs it up: tests/image checks the two.
DEFAULT_POSTGRES_IMAGE = "postgres:16-bookworm"


class ManagedDatabase(Model):
    storage: Quantity = "1Gi"
    """Size of the PostgreSQL data volume."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass of the data volume; the cluster's default when unset."""
    image: str = Field(default=DEFAULT_POSTGRES_IMAGE, min_length=1, max_length=512)
    """PostgreSQL image. Backups use the API image's pg_dump (PostgreSQL 17), which cannot dump a
    newer server."""
    scheduling: Scheduling | None = None
    """Where the PostgreSQL pod runs. When set it replaces spec.scheduling for this pod as a
    whole (fields left out here are not taken from spec.scheduling); unset, spec.scheduling
    applies."""
    resources: DatabaseResources = Field(default_factory=DatabaseResources)
    """CPU, memory and ephemeral storage for the PostgreSQL pod."""


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
    # A quarter of the limit is left for Redis's own overhead; below this, maxmemory would be too
    # small to hold anything (and 0 would mean no maxmemory at all). `resources` is missing only
    # from the schema's own default, `managed: {}`, before defaulting fills it in.
    model_config = cel_rules(
        cel(
            "!has(self.resources) || "
            + quantity_at_most(f"'{REDIS_MIN_MEMORY_LIMIT}'", "self.resources.limits.memory"),
            f"resources.limits.memory of a managed Redis must be at least {REDIS_MIN_MEMORY_LIMIT}",
            ".resources.limits.memory",
        )
    )

    image: str = Field(default="redis:7-bookworm", min_length=1, max_length=512)
    """Redis image."""
    scheduling: Scheduling | None = None
    """Where the Redis pod runs. When set it replaces spec.scheduling for this pod as a whole
    (fields left out here are not taken from spec.scheduling); unset, spec.scheduling applies."""
    resources: CacheResources = Field(default_factory=CacheResources)
    """CPU, memory and ephemeral storage for the Redis pod; maxmemory follows the memory limit."""


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


class SigningKeyRotation(Model):
    model_config = cel_rules(
        cel(
            f"{ttl_seconds('self.interval')} >= {ROTATION_INTERVAL_MIN_SECONDS} && "
            f"{ttl_seconds('self.interval')} <= "
            f"{ROTATION_INTERVAL_MAX_DAYS} * {TTL_UNIT_SECONDS['d']}",
            "interval must be between 1h and 365d",
            ".interval",
        )
    )

    interval: str = Field(pattern=TTL_PATTERN, max_length=10)
    """How long a signing key signs before the next one takes over (`30d`). The next key is
    published to every pod first, signs once they all have it, and the old one verifies until
    the refresh-token TTL has passed, so nobody is logged out."""


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
        cel(
            "!(has(self.signingKeyRotation) && has(self.signingKeySecretRef))",
            "signingKeyRotation rotates the generated key only: remove signingKeySecretRef "
            "or signingKeyRotation",
            ".signingKeyRotation",
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
    signing_key_rotation: SigningKeyRotation | None = None
    """Rotate the generated signing key (off when unset). A key from signingKeySecretRef is
    the user's and is never rotated by the operator."""


# The annotations by which cert-manager's ingress-shim picks the issuer of an Ingress's
# certificate, by kind of issuer; the last two qualify an external issuer.
CERT_MANAGER_ISSUER_ANNOTATIONS = {
    "Issuer": "cert-manager.io/issuer",
    "ClusterIssuer": "cert-manager.io/cluster-issuer",
}
CERT_MANAGER_ISSUER_KEYS = (
    *CERT_MANAGER_ISSUER_ANNOTATIONS.values(),
    "cert-manager.io/issuer-kind",
    "cert-manager.io/issuer-group",
)
# A URL path both an Ingress and an HTTPRoute take: absolute, RFC 3986 path characters (no
# percent-encoding); the CEL rule below refuses the empty, `.` and `..` segments both refuse.
URL_PATH_PATTERN = r"^/[-A-Za-z0-9/._~!$&'()*+,;=:@]*$"


class IssuerRef(Model):
    """A cert-manager issuer (cert-manager.io/v1), as a Certificate's issuerRef names one."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of the Issuer (in the TaskManager's namespace) or ClusterIssuer."""
    kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"
    """Issuer (namespaced) or ClusterIssuer; Issuer when unset, as in cert-manager."""


class GatewayRef(Model):
    """A Gateway (gateway.networking.k8s.io/v1) the HTTPRoute attaches to."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of the Gateway."""
    namespace: str | None = Field(default=None, pattern=DNS_LABEL_PATTERN, max_length=63)
    """Namespace of the Gateway; the TaskManager's when unset. A Gateway elsewhere must allow
    routes from the TaskManager's namespace (its listeners' allowedRoutes)."""
    section_name: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Listener of the Gateway to attach to; every listener that allows the route when unset."""


class Ingress(Model):
    model_config = cel_rules(
        cel("!self.enabled || has(self.host)", "ingress.host is required when enabled"),
        cel(
            "!has(self.issuerRef) || has(self.host)",
            "ingress.issuerRef needs ingress.host: the certificate is issued for the host",
            ".issuerRef",
        ),
        cel(
            "!has(self.issuerRef) || "
            + " && ".join(f"!('{key}' in self.annotations)" for key in CERT_MANAGER_ISSUER_KEYS),
            "ingress.annotations must not name a cert-manager issuer ("
            + ", ".join(CERT_MANAGER_ISSUER_KEYS)
            + ") when ingress.issuerRef is set: issuerRef sets them",
            ".annotations",
        ),
        cel(
            "!self.path.contains('//') && !(self.path + '/').contains('/./')"
            " && !(self.path + '/').contains('/../')",
            "ingress.path must not have an empty, `.` or `..` segment",
            ".path",
        ),
        cel(
            "!has(self.gateway) || (!has(self.className) && !has(self.tlsSecretName)"
            " && !has(self.issuerRef))",
            "ingress.gateway routes through a Gateway, whose listeners hold the certificates: "
            "className, tlsSecretName and issuerRef are for an Ingress",
            ".gateway",
        ),
        cel(
            "!has(self.gateway) || self.pathType != 'ImplementationSpecific'",
            "ingress.pathType ImplementationSpecific is for an Ingress: an HTTPRoute "
            "(ingress.gateway) matches Prefix or Exact",
            ".pathType",
        ),
    )

    enabled: bool = False
    """Expose the API outside the cluster: through an Ingress, or an HTTPRoute when gateway is
    set."""
    class_name: str | None = Field(default=None, max_length=253)
    """IngressClass to use; the cluster's default when unset."""
    host: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Host name the API answers on."""
    path: str = Field(default="/", pattern=URL_PATH_PATTERN, max_length=1024)
    """URL path the API is reached under. Requests reach the API with their path unchanged (no
    rewrite), and the API serves /api/v1/..., /docs, /health and /ready: `/api` sends it its REST
    routes only and leaves the rest of the host to others."""
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"] = "Prefix"
    """How the path matches, as in an Ingress: Prefix (the path and every path below it), Exact,
    or ImplementationSpecific (as the IngressClass's controller reads it; not with gateway)."""
    annotations: AnnotationMap = {}
    """Annotations on the Ingress (or the HTTPRoute), for its controller or for external-dns
    (`nginx.ingress.kubernetes.io/proxy-body-size: 8m`)."""
    tls_secret_name: str | None = Field(default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """Secret with the TLS certificate for the host; TLS is on when set. With issuerRef, the
    Secret cert-manager writes the certificate to (`<name>-api-tls` when unset)."""
    issuer_ref: IssuerRef | None = None
    """A cert-manager Issuer or ClusterIssuer to issue the host's certificate: the Ingress gets
    the annotation cert-manager reads (cert-manager.io/issuer or cert-manager.io/cluster-issuer)
    and TLS. Set the issuer here or by annotation, not both."""
    gateway: GatewayRef | None = None
    """Route through this Gateway (Gateway API) with an HTTPRoute instead of an Ingress: the
    Gateway's listeners decide TLS and their certificates. Where the cluster does not serve
    gateway.networking.k8s.io/v1, no HTTPRoute is made and the condition RouteAccepted says
    why."""


class NetworkPolicy(Model):
    enabled: bool = True
    """A NetworkPolicy for each kind of pod: the API's let only the API port in, and only the
    database, Redis and DNS out; the migration Job's let nothing in, and only the database and
    DNS out; the managed PostgreSQL's and Redis's let in only this TaskManager's API pods (and,
    for PostgreSQL, its migration Job) on their port, and nothing out."""


class PodDisruptionBudget(Model):
    max_unavailable: int = Field(default=1, ge=1)
    """API pods that a voluntary disruption (a node drain) may take down at once."""


class RateLimits(Model):
    requests_per_minute: int = Field(default=100, ge=1, le=1_000_000)
    """Requests per minute per authenticated user."""
    login_per_minute: int = Field(default=5, ge=1, le=10_000)
    """Login attempts per minute per user name."""


class Cors(Model):
    """Which browser scripts on other origins may call the API (Cross-Origin Resource Sharing)."""

    model_config = cel_rules(
        cel(
            "!self.allowCredentials || !('*' in self.allowOrigins)",
            "allowOrigins must list the origins, not '*', when allowCredentials is true "
            "(browsers refuse credentials from an API that allows every origin)",
            ".allowOrigins",
        )
    )

    allow_origins: list[CorsOrigin] = Field(min_length=1, max_length=32)
    """Origins allowed, as browsers send them: `scheme://host[:port]` in lower case, no path
    (`https://app.example.com`), or `*` for any origin."""
    allow_methods: list[HttpMethod] = Field(
        default=list(DEFAULT_CORS_METHODS), min_length=1, max_length=len(get_args(HttpMethod))
    )
    """HTTP methods the origins may use."""
    allow_headers: list[HeaderName] = Field(default=list(DEFAULT_CORS_HEADERS), max_length=32)
    """Request headers the origins may send besides the always-allowed ones (Accept,
    Accept-Language, Content-Language, Content-Type); `*` allows any."""
    allow_credentials: bool = False
    """Let browsers send cookies and HTTP authentication with the requests (the API's bearer
    tokens do not need it)."""
    max_age_seconds: CorsMaxAgeSeconds = DEFAULT_CORS_MAX_AGE_SECONDS
    """How long browsers may cache a preflight's answer."""


class SecurityHeaders(Model):
    enabled: bool = True
    """Send X-Content-Type-Options, X-Frame-Options, a frame-ancestors Content-Security-Policy
    and Referrer-Policy on every response, and Strict-Transport-Security over TLS."""
    hsts_max_age_seconds: HstsMaxAgeSeconds = DEFAULT_HSTS_MAX_AGE_SECONDS
    """How long browsers keep to HTTPS for the host (and its subdomains) after a response over
    TLS; 0 makes them forget it."""


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


# An S3 bucket name (the rules of AWS for new buckets; S3-compatible servers take them too).
S3_BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# A key prefix: no leading slash, no empty, `.` or `..` segment.
S3_PREFIX_PATTERN = r"^([A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/?)?$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+(:[0-9]{1,5})?/?$"


def _known_time_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Paris")
    return name


Schedule = Annotated[str, Field(pattern=CRON_PATTERN, max_length=CRON_MAX_LENGTH)]
TimeZone = Annotated[
    str,
    AfterValidator(_known_time_zone),
    Field(max_length=64, json_schema_extra={"enum": list(time_zones())}),
]


class BackupRetention(Model):
    days: int = Field(default=30, ge=1, le=3650)
    """Scheduled backups older than this many days are deleted with their data."""
    min_keep: int = Field(default=3, ge=1, le=1000)
    """The newest completed backups kept whatever their age; the newest good backup is never
    deleted, even past `days`."""


class PersistentVolumeStorage(Model):
    size: Quantity = "5Gi"
    """Size of the PersistentVolumeClaim `<name>-backups` the backups are written to."""
    storage_class_name: str | None = Field(default=None, max_length=253)
    """StorageClass of the claim; the cluster's default when unset."""


class S3CredentialsRef(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)
    """Name of a Secret in the TaskManager's namespace."""


class S3Storage(Model):
    endpoint: str | None = Field(default=None, pattern=HTTP_URL_PATTERN, max_length=512)
    """URL of an S3-compatible server (`https://minio.storage.svc:9000`); AWS S3 when unset."""
    bucket: str = Field(pattern=S3_BUCKET_PATTERN, max_length=63)
    """Bucket the backups go to; it must exist."""
    prefix: str = Field(default="", pattern=S3_PREFIX_PATTERN, max_length=512)
    """Key prefix of this TaskManager's backups in the bucket; `<namespace>/<name>/` when
    empty."""
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]+$", max_length=64)
    """Region of the bucket."""
    force_path_style: bool = False
    """Address the bucket in the path (`endpoint/bucket/key`) rather than the host name, as
    most S3-compatible servers want."""
    credentials_secret_ref: S3CredentialsRef
    """The access key: a Secret with the keys `access-key-id` and `secret-access-key`, mounted
    into the backup Jobs as files, never put in their environment."""
    ca_secret_ref: SecretKeyRef | None = None
    """A Secret key with the CA bundle (PEM) the server's certificate is checked against; the
    image's trusted CAs when unset."""


class BackupStorage(Model):
    model_config = cel_rules(
        cel(
            "has(self.persistentVolume) != has(self.s3)",
            "backup.storage takes exactly one of persistentVolume or s3",
        )
    )

    persistent_volume: PersistentVolumeStorage | None = None
    """A PersistentVolumeClaim of the operator's in the TaskManager's namespace."""
    s3: S3Storage | None = None
    """A bucket of S3 or an S3-compatible server."""


class BackupVerification(Model):
    schedule: Schedule | None = "0 5 * * 0"
    """When the newest backup is restored into a scratch database and its schema revision and
    row counts compared with what the backup recorded (cron, in backup.timeZone); unset, backups
    are verified only on demand."""


class Backup(Model):
    enabled: bool = False
    """Back up the API's database: on schedule, and on demand (a TaskManagerBackup), to the
    storage below. Off, a TaskManagerBackup of this TaskManager fails with reason
    BackupsDisabled."""
    schedule: Schedule = "0 3 * * *"
    """When to take a backup: cron's five fields, minute hour day-of-month month day-of-week,
    (`0 3 * * *` is 03:00 daily), or @daily, @hourly and the like."""
    time_zone: TimeZone = "UTC"
    """The IANA time zone the schedules are read in (`Europe/Paris`)."""
    suspend: bool = False
    """Take no scheduled backups for now; a slot missed while suspended is not made up."""
    retention: BackupRetention = Field(default_factory=BackupRetention)
    """How long scheduled backups are kept."""
    storage: BackupStorage = Field(
        default_factory=lambda: BackupStorage(persistent_volume=PersistentVolumeStorage()),
        json_schema_extra={"default": {"persistentVolume": {}}},
    )
    """Where backups are stored: a PersistentVolumeClaim (the default) or an S3 bucket."""
    before_upgrade: Literal["Required", "BestEffort", "Disabled"] = "BestEffort"
    """A backup before a migration runs: Required holds the upgrade back until one succeeds,
    BestEffort goes on (with a Warning event) when it fails, Disabled takes none."""
    final_backup: bool = True
    """When the TaskManager is deleted with its managed database, take a last backup first;
    the deletion waits for it (at most 15 minutes), and the backup outlives the TaskManager."""
    verification: BackupVerification = Field(default_factory=BackupVerification)
    """Scheduled restore tests of the newest backup."""


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
    """CPU, memory and ephemeral storage for each API pod (and the migration Job's); the
    autoscaler's utilization is relative to the requests."""
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
    """How the API is reached from outside the cluster: an Ingress, or an HTTPRoute to a
    Gateway."""
    network_policy: NetworkPolicy = Field(default_factory=NetworkPolicy)
    """NetworkPolicies around the API pods, the migration Job's and the managed services'."""
    pod_disruption_budget: PodDisruptionBudget = Field(default_factory=PodDisruptionBudget)
    """PodDisruptionBudget for the API pods (created when more than one pod can run)."""
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    """Request rate limits the API enforces."""
    cors: Cors | None = None
    """CORS for browser scripts on other origins; unset, the API sends no CORS headers at all."""
    security_headers: SecurityHeaders = Field(default_factory=SecurityHeaders)
    """Security headers on the API's responses."""
    monitoring: Monitoring = Field(default_factory=Monitoring)
    """Prometheus scraping, alerting and recording rules, and Grafana dashboards."""
    scheduling: Scheduling = Field(default_factory=Scheduling)
    """Where the pods run: the API pods, the migration Job's, and the managed PostgreSQL's and
    Redis's unless their own scheduling replaces it."""
    pod_template: PodTemplate = Field(default_factory=PodTemplate)
    """Labels and annotations added to the API pods, for a service mesh or a secret injector."""
    image_pull_secrets: list[ImagePullSecret] = Field(
        default=[],
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Secrets with the credentials of a private registry: every pod the operator makes pulls its
    image with them (the API's, the migration Job's, the managed PostgreSQL's and Redis's)."""
    service_account_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )
    """ServiceAccount of the API pods and the migration Job, for a workload identity; it must
    exist in the namespace. Unset, the operator makes one, `<name>-api`, which mounts no token.
    Either way the pods mount no API token of their own."""
    backup: Backup = Field(default_factory=Backup)
    """Scheduled backups of the database, their retention and storage; see also the
    TaskManagerBackup and TaskManagerRestore kinds."""
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


class SigningKeyStatus(Model):
    kid: str
    """The key's id (the JWT header's kid)."""
    role: Literal["signing", "next", "retiring"]
    """signing: signs new tokens; next: verifies, signs once every pod has it; retiring:
    verifies the tokens it signed until the refresh-token TTL has passed."""
    created_at: str
    """When the operator made the key."""
    since: str
    """When the key took its role."""


class BackupReference(Model):
    name: str
    """The TaskManagerBackup."""
    time: str
    """When it completed (or failed)."""
    location: str | None = None
    """Where its data is (`s3://bucket/prefix/...`, `file:///backups/...`)."""
    size: str | None = None
    """Size of the dump, in binary units (`12.5Mi`)."""
    message: str | None = None
    """Why it failed, for a failed one."""


class BackupStatus(Model):
    last_successful: BackupReference | None = None
    """The newest completed backup."""
    last_failed: BackupReference | None = None
    """The newest failed backup, and why."""
    last_verified: BackupReference | None = None
    """The newest backup whose verification passed."""
    next_scheduled_time: str | None = None
    """When the next scheduled backup is due."""


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
    external_url: str | None = Field(default=None, alias="externalURL")
    """URL of the API from outside the cluster, once its Ingress or HTTPRoute exists: https when
    TLS is on (for an HTTPRoute: when its Gateway listener speaks HTTPS), the host and the
    path."""
    monitoring: MonitoringStatus | None = None
    """The monitoring objects, and which Prometheus picks them up."""
    signing_keys: list[SigningKeyStatus] | None = None
    """The generated JWT keys while spec.auth.signingKeyRotation is on: ids and times only."""
    backup: BackupStatus | None = None
    """The last good, failed and verified backups, and when the next is due."""


def to_manifest(model: BaseModel) -> dict[str, Any]:
    """A model as it appears in a Kubernetes object: camelCase keys, unset optionals left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)

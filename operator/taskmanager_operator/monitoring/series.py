"""The series of one TaskManager, and the SLIs computed from them, as PromQL.

Every scrape object the operator makes sets `job` to the API's Service name (a PodMonitor's
default job would be `<namespace>/<podmonitor>`), so one selector, `namespace` plus `job`, finds
a TaskManager's series whichever way it is scraped. Metrics of kube-state-metrics and cAdvisor
have no `job` of ours: they are found by namespace and pod name.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from taskmanager_api import metric_contract as contract

# The windows the recording rules keep: those of the multiwindow, multi-burn-rate alerts.
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The window the SLOs are measured over, and that the dashboard's "budget left" counts down.
SLO_WINDOW = "30d"
# The container name the API's pods run (builders/api.py).
API_CONTAINER = "api"


@dataclass(frozen=True)
class Scope:
    """Where one TaskManager's series live."""

    namespace: str
    # The TaskManager's name, and the API Service's name, which is the `job` label.
    name: str
    job: str

    @property
    def selector(self) -> str:
        """Label matchers of the app's own series."""
        return f'namespace="{self.namespace}", job="{self.job}"'

    @property
    def pods(self) -> str:
        """Label matchers of per-pod series from kube-state-metrics and cAdvisor (the API's
        Deployment names its pods `<deployment>-<replicaset hash>-<suffix>`)."""
        return (
            f'namespace="{self.namespace}", pod=~"{self.job}-[a-z0-9]+-[a-z0-9]+", '
            f'container="{API_CONTAINER}"'
        )

    @property
    def traffic(self) -> str:
        """Label matchers of the requests an SLI counts: user traffic, no probes or scrapes."""
        routes = "|".join(contract.OPERATIONS_ROUTES)
        return f'{self.selector}, route!~"{routes}"'


def request_rate(scope: Scope, window: str, matchers: str = "") -> str:
    extra = f", {matchers}" if matchers else ""
    matched = f"{contract.HTTP_REQUESTS}{{{scope.traffic}{extra}}}"
    return f"sum by (namespace, job) (rate({matched}[{window}]))"


def error_ratio(scope: Scope, window: str) -> str:
    """Share of user requests answered with a 5xx: 0, not no data, while none failed (a status
    label no request has had has no series, so the 5xx rate alone would be empty)."""
    total = request_rate(scope, window)
    failed = request_rate(scope, window, 'status=~"5.."')
    return f"(\n{failed}\nor\n0 * {total}\n)\n/\n{total}"


def slow_ratio(scope: Scope, window: str, threshold_seconds: float) -> str:
    """Share of user requests slower than the threshold (a bucket bound: see Slo), whose `le`
    label is written the way the app's client library writes it (`1.0`, not `1`)."""
    buckets = f"{contract.HTTP_REQUEST_DURATION}_bucket"
    count = f"{contract.HTTP_REQUEST_DURATION}_count"
    fast = (
        f"sum by (namespace, job) (rate({buckets}{{{scope.traffic}, "
        f'le="{bucket_label(threshold_seconds)}"}}[{window}]))'
    )
    total = f"sum by (namespace, job) (rate({count}{{{scope.traffic}}}[{window}]))"
    return f"1 - (\n{fast}\n/\n{total}\n)"


def bucket_label(bound: float) -> str:
    """A bucket's `le` as the app's client library writes it."""
    label: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return label


def latency_quantile(scope: Scope, quantile: float, window: str, by: str = "") -> str:
    labels = ", ".join(label for label in ("le", by) if label)
    return (
        f"histogram_quantile({quantile:g}, sum by ({labels}) "
        f"(rate({contract.HTTP_REQUEST_DURATION}_bucket{{{scope.traffic}}}[{window}])))"
    )


# Names of the recording rules, one per SLI and window.
def requests_record(window: str) -> str:
    return f"taskmanager:http_requests:rate{window}"


def errors_record(window: str) -> str:
    return f"taskmanager:http_errors:ratio_rate{window}"


def slow_record(window: str) -> str:
    return f"taskmanager:http_slow:ratio_rate{window}"

"""Which Prometheus objects of prometheus-operator pick up a scrape object or a rule.

prometheus-operator's rules: an unset object selector selects nothing and an empty one
everything; an unset namespace selector means the Prometheus object's own namespace only, an
empty one every namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The Prometheus spec's selector fields, by the kind of object they select.
SELECTORS = {
    "ServiceMonitor": ("serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
    "PodMonitor": ("podMonitorSelector", "podMonitorNamespaceSelector"),
    "PrometheusRule": ("ruleSelector", "ruleNamespaceSelector"),
}


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selects(
    prometheus: Mapping[str, Any],
    obj: Mapping[str, Any],
    namespace_labels: Mapping[str, str],
) -> bool:
    fields = SELECTORS.get(obj["kind"])
    if fields is None:
        return False
    spec = prometheus.get("spec") or {}
    object_selector, namespace_selector = (spec.get(name) for name in fields)
    if object_selector is None:
        return False
    metadata = obj["metadata"]
    if namespace_selector is None:
        in_scope = prometheus["metadata"]["namespace"] == metadata["namespace"]
    else:
        in_scope = matches(namespace_selector, namespace_labels)
    return in_scope and matches(object_selector, metadata.get("labels") or {})


def selected_by(
    prometheuses: Sequence[Mapping[str, Any]],
    obj: Mapping[str, Any],
    namespace_labels: Mapping[str, str],
) -> list[str]:
    """`namespace/name` of every Prometheus that picks up the object."""
    return sorted(
        f"{prometheus['metadata']['namespace']}/{prometheus['metadata']['name']}"
        for prometheus in prometheuses
        if selects(prometheus, obj, namespace_labels)
    )

"""Apply what the spec wants, delete the children it no longer wants; each change goes in the
reconcile's Events, which post one event per kind of change naming every child."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from taskmanager_operator.builders.common import Capabilities, Manifest
from taskmanager_operator.children import ChildKind, optional_children
from taskmanager_operator.k8s import KubeApi, Object
from taskmanager_operator.reconcile.outcome import Event, Events
from taskmanager_operator.resource import TaskManager

logger = logging.getLogger(__name__)


@dataclass
class Applied:
    """The optional children as the API server has them, and the kinds it does not serve."""

    objects: list[Object] = field(default_factory=list)
    unserved: list[ChildKind] = field(default_factory=list)


class Applier:
    """Writes the children of one TaskManager, appending to `events` what a user should see."""

    def __init__(self, kube: KubeApi, tm: TaskManager, events: Events) -> None:
        self.kube = kube
        self.tm = tm
        self.events = events

    def apply(self, manifest: Manifest) -> Object:
        """Server-side apply; the object as the API server has it, to observe its status."""
        result = self.kube.apply(manifest)
        if result.changed:
            verb = "Created" if result.created else "Updated"
            what = f"{manifest['kind']} {manifest['metadata']['name']}"
            self.events.append(Event.listing("Normal", verb, [what]))
            logger.info("%s %s in %s", verb.lower(), what, manifest["metadata"]["namespace"])
        return result.object

    def generated_secret(self, manifest: Manifest | None, name: str) -> None:
        """Apply the Secret of generated values, or delete it once every value is the user's."""
        if manifest is not None:
            self.apply(manifest)
        else:
            self.kube.delete_owned("v1", "Secret", self.tm.namespace, name, self.tm.uid)

    def managed(
        self, manifests: list[Manifest], workload: tuple[str, str, str], services: list[str]
    ) -> bool:
        """Apply a managed service, or remove it (its workload and `services`, the names of its
        Services) when the spec points at an external one.

        Whether it is ready: an external one counts as ready, it is not ours to watch."""
        api_version, kind, name = workload
        if not manifests:
            self.kube.delete_owned(api_version, kind, self.tm.namespace, name, self.tm.uid)
            for service in services:
                self.kube.delete_owned("v1", "Service", self.tm.namespace, service, self.tm.uid)
            return True
        if self._replacing(manifests[0]):
            for manifest in manifests[1:]:
                self.apply(manifest)
            return False
        applied = [self.apply(manifest) for manifest in manifests]
        workload_status = applied[0].get("status") or {}
        return int(workload_status.get("readyReplicas") or 0) >= 1

    def _replacing(self, workload: Manifest) -> bool:
        """Whether a StatefulSet whose serviceName changed is being replaced: the API server never
        lets that field change (a StatefulSet made before the headless Service existed names the
        ClusterIP one). It is deleted with its pod and volume orphaned, and a later reconcile,
        once it is gone, creates it anew; the new one adopts them, so the data stays."""
        if workload["kind"] != "StatefulSet":
            return False
        name = workload["metadata"]["name"]
        existing = self.kube.get(workload["apiVersion"], "StatefulSet", self.tm.namespace, name)
        if existing is None or existing["spec"].get("serviceName") == workload["spec"].get(
            "serviceName"
        ):
            return False
        if not existing["metadata"].get("deletionTimestamp"):
            self.kube.delete_owned(
                workload["apiVersion"],
                "StatefulSet",
                self.tm.namespace,
                name,
                self.tm.uid,
                orphan=True,
            )
            message = (
                f"Replacing StatefulSet {name} to change its serviceName (its pod and volume stay)"
            )
            self.events.append(Event("Normal", "Replacing", message))
            logger.info("replacing StatefulSet %s in %s", name, self.tm.namespace)
        return True

    def optional(self, capabilities: Capabilities, *, before_workloads: bool = False) -> Applied:
        """Apply each optional child the spec asks for; delete the ones it no longer wants.

        Called twice: for the children the workloads need (`before_workloads`), and for the
        rest after them. A kind the cluster does not serve is skipped (nothing of it can exist
        to delete)."""
        tm = self.tm
        applied = Applied()
        for child, when in optional_children():
            if when.before_workloads != before_workloads:
                continue
            served = child.served_by(self.kube)
            manifest = when.build(tm, capabilities)
            if manifest is not None and not served:
                applied.unserved.append(child)
                continue
            if manifest is not None:
                applied.objects.append(self.apply(manifest))
                continue
            if not served:
                continue
            name = when.name(tm)
            if self.kube.delete_owned(child.api_version, child.kind, tm.namespace, name, tm.uid):
                self.events.append(Event.listing("Normal", "Deleted", [f"{child.kind} {name}"]))
        return applied

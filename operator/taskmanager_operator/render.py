"""Every child the operator makes for a TaskManager, rendered without a cluster.

`python -m taskmanager_operator.render FILE...` prints, as one YAML stream, the children of each
TaskManager in the files (hack/kube-score.sh lints them). A child that depends on what the
cluster serves is rendered as if it served everything the spec asks for; the generated secret
values are placeholders, never real ones.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from taskmanager_operator.api.v1alpha1 import DEFAULT_IMAGE_REPOSITORY, GROUP, KIND
from taskmanager_operator.builders import api, config, managed, migration
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import Capabilities, Manifest, checksum, image
from taskmanager_operator.children import optional_children
from taskmanager_operator.resource import TaskManager

# What a TaskManager read from a file lacks until the API server has stored it.
DEFAULT_NAMESPACE = "default"
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


def placeholder_token(nbytes: int) -> str:
    """Stands in for a generated secret value, so a rendering never holds a real one."""
    return "x" * nbytes


def children(
    tm: TaskManager,
    *,
    image_repository: str = DEFAULT_IMAGE_REPOSITORY,
    token: secret_builder.TokenFactory = placeholder_token,
    capabilities: Capabilities = Capabilities(),  # noqa: B008 - frozen, so safe to share
) -> list[Manifest]:
    """The children a reconcile applies once the TaskManager has converged, in its order."""
    desired_image = image(tm, image_repository)
    generated = secret_builder.build_generated_secret(tm, token=token)
    config_map = config.build_config_map(tm)
    wanted = [
        (when.before_workloads, when.build(tm, capabilities)) for _, when in optional_children()
    ]
    return [
        child
        for child in (
            generated,
            config_map,
            *(child for first, child in wanted if first),
            *managed.build_postgres(tm),
            *managed.build_redis(tm),
            migration.build_migration_job(tm, image=desired_image),
            api.build_deployment(
                tm,
                image=desired_image,
                rollout_checksum=checksum(config_map["data"], (generated or {}).get("data")),
            ),
            api.build_service(tm),
            *(child for first, child in wanted if not first),
        )
        if child is not None
    ]


def taskmanagers(documents: Iterable[Any]) -> Iterator[TaskManager]:
    """The TaskManagers among YAML documents, with the identity the API server would add."""
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != KIND:
            continue
        if not str(document.get("apiVersion", "")).startswith(f"{GROUP}/"):
            continue
        metadata = document.get("metadata") or {}
        yield TaskManager.from_body(
            {
                **document,
                "metadata": {
                    "namespace": DEFAULT_NAMESPACE,
                    "uid": PLACEHOLDER_UID,
                    **metadata,
                },
            }
        )


def render(paths: Sequence[Path]) -> str:
    """The children of every TaskManager in the files, as one YAML stream."""
    manifests = [
        child
        for path in paths
        for tm in taskmanagers(yaml.safe_load_all(path.read_text()))
        for child in children(tm)
    ]
    return yaml.safe_dump_all(manifests, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taskmanager_operator.render",
        description="Print the children of the TaskManagers in FILE as YAML, without a cluster.",
    )
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path)
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.files))
    return 0


if __name__ == "__main__":
    sys.exit(main())

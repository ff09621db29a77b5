"""`python -m taskmanager_operator`: run the operator (kopf) with its probes and metrics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence

import kopf

# Registers the handlers with kopf's default registry.
import taskmanager_operator.handlers  # noqa: F401


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m taskmanager_operator",
        description="Reconcile TaskManager resources into running task-manager APIs.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch this namespace (repeatable); default: $TASKMANAGER_OPERATOR_NAMESPACES "
        "(comma-separated), else all namespaces",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--liveness",
        default=os.environ.get("TASKMANAGER_OPERATOR_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="liveness endpoint URL (kopf's probe server)",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        default=os.environ.get("TASKMANAGER_OPERATOR_PEERING"),
        help="kopf peering name: of several replicas with the same name, only one acts",
    )
    peering.add_argument(
        "--standalone", action="store_true", help="act without peering (a single replica)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=[f.name.lower() for f in kopf.LogFormat],
        default=os.environ.get("TASKMANAGER_OPERATOR_LOG_FORMAT", "json"),
    )
    return parser


def namespaces_to_watch(args: argparse.Namespace) -> list[str]:
    if args.all_namespaces:
        return []
    if args.namespace:
        return list(args.namespace)
    configured = os.environ.get("TASKMANAGER_OPERATOR_NAMESPACES", "")
    return [name.strip() for name in configured.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    if not args.verbose:
        # kopf logs every handler call at INFO; ours are one-liners that only queue a reconcile.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        # The client's leader election logs every renewal at INFO.
        logging.getLogger("leaderelection").setLevel(logging.WARNING)
    namespaces = namespaces_to_watch(args)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness,
            standalone=args.standalone or not args.peering,
            peering_name=args.peering,
        )
    )


if __name__ == "__main__":
    main()

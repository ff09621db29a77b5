"""A fix for kopf (1.45): namespaces that appear only in a listing are served too.

With namespace patterns (`--namespace 'team-*'`), kopf lists the namespaces once, then starts a
watch stream, which lists them again before it watches. It ignores the events of that second
listing (type None), taking them for what the first listing already had. A namespace created
between the two listings, as one created while the operator starts, appears in neither the first
listing nor any watch event: kopf never serves it, and its TaskManagers are never reconciled
until the operator restarts. The same holds for a namespace created while a watch stream is
re-established (it relists after "410 Gone"). tests/cluster/test_operator_startup.py reproduces it
(about 1 namespace in 60 created during start-up was missed before this fix).

The fix: revise kopf's set of served namespaces on listing events as on any other; doing so again
for a namespace kopf already serves changes nothing. It replaces one function in kopf's
observation module, looked up there each time a namespace watch starts, so it must be installed
before `kopf.operator()` runs (handlers.py does it on import).
"""

from __future__ import annotations

from typing import Any

from kopf._core.reactor import observation

_KOPF_PROCESSOR = observation.process_discovered_namespace_event


async def _revise_on_listings_too(
    *, raw_event: Any, namespaces: Any, insights: Any, **kwargs: Any
) -> None:
    if raw_event["type"] is not None:
        await _KOPF_PROCESSOR(
            raw_event=raw_event, namespaces=namespaces, insights=insights, **kwargs
        )
        return
    async with insights.revised:
        observation.revise_namespaces(
            raw_events=[raw_event], insights=insights, namespaces=namespaces
        )
        insights.revised.notify_all()


def serve_namespaces_seen_in_listings() -> None:
    observation.process_discovered_namespace_event = _revise_on_listings_too

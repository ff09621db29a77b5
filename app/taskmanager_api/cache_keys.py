"""Names of cached objects, shared by the domains that write them and the auth that prefetches."""

from __future__ import annotations

import uuid


def user_cache_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def task_cache_key(task_id: uuid.UUID) -> str:
    return f"task:{task_id}"


def prefetch_keys(path_params: dict[str, str]) -> tuple[str, ...]:
    """Cached objects a route will read, fetched in the caller's authentication round trip."""
    try:
        return (task_cache_key(uuid.UUID(path_params["task_id"])),)
    except (KeyError, ValueError):
        return ()

"""A per-key work queue (the client-go model): a key waits in the queue at most once, a key being
reconciled is not handed to a second worker, and an event during a reconcile queues one more run.

kopf reacts to events of one resource at a time; a TaskManager must also be reconciled when one of
its children changes (drift) and again later (backoff, progress, resync). Funnelling every trigger
through this queue keeps one reconcile per TaskManager at a time, whatever triggered it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    def __init__(self) -> None:
        self._ready: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        """Queue a key now (once, however often it is added)."""
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Queue a key after `delay` seconds, unless it is due sooner already."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None and current.when() <= when:
            return
        if current is not None:
            current.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: Key) -> None:
        """Drop a key's pending timer (its object is gone)."""
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()

    async def get(self) -> Key:
        key = await self._ready.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return self._ready.qsize()

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

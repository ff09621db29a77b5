"""The work queue keeps one reconcile per TaskManager at a time and loses no trigger."""

from __future__ import annotations

import asyncio

from taskmanager_operator.workqueue import WorkQueue


async def test_a_key_added_twice_is_handed_out_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_a_key_added_while_it_is_reconciled_runs_again_after() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # an event arrives during the reconcile
    assert len(queue) == 0, "not handed to a second worker meanwhile"
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_the_earliest_delayed_add_wins_and_an_immediate_add_cancels_it() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 60)
    queue.add_after("a", 0.05)
    queue.add_after("a", 30)  # later than the pending one: ignored
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"
    queue.done("a")

    queue.add_after("b", 0.05)
    queue.add("b")
    assert await queue.get() == "b"
    queue.done("b")
    await asyncio.sleep(0.1)  # past the cancelled timer: it must not fire
    assert len(queue) == 0


async def test_forget_drops_a_pending_timer() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("gone", 0.05)
    queue.forget("gone")
    await asyncio.sleep(0.1)
    assert len(queue) == 0

"""Conformance, tasks and time: sleeps, clocks, timeouts, cancellation, Event/Queue/Lock.

Every test runs under every binding (see conftest.py) and must give the same result.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance_harness import Ctx, Harness

from gotor.errors import Cancelled, ClosedError, LocalError, Timeout
from gotor.runtime.api import Task
from gotor.runtime.sync import Event, Lock, Queue, timeout


def test_sleeps_finish_in_deadline_order(harness: Harness) -> None:
    async def main(c: Ctx) -> list[str]:
        order: list[str] = []

        async def sleeper(delay: float, tag: str) -> None:
            await c.rt.sleep(delay)
            order.append(tag)

        tasks = [c.rt.spawn(sleeper(d, t), name=t) for d, t in [(0.03, "c"), (0.01, "a"),
                                                                  (0.02, "b"), (0.0, "zero")]]
        for task in tasks:
            await task
        return order

    assert harness.run(main) == ["zero", "a", "b", "c"]


def test_clocks_advance_with_sleep(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[float, float, float]:
        t0, w0 = c.rt.now(), c.rt.wallclock()
        await c.rt.sleep(0.05)
        return c.rt.now() - t0, c.rt.wallclock() - w0, w0

    mono, wall, w0 = harness.run(main)
    assert mono >= 0.05 - 1e-6
    assert wall >= 0.04
    assert w0 > 1.6e9  # a plausible POSIX time, real or virtual epoch


def test_task_result_and_error_propagate(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[int, str]:
        async def ok() -> int:
            await c.rt.sleep(0.001)
            return 42

        async def bad() -> None:
            await c.rt.sleep(0.001)
            raise LocalError("boom")

        good = await c.rt.spawn(ok(), name="ok")
        failing = c.rt.spawn(bad(), name="bad")
        try:
            await failing
        except LocalError as exc:
            return good, str(exc)
        return good, "no error"

    assert harness.run(main) == (42, "boom")


def test_timeout_expires_and_cleans_up(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[str, list[str]]:
        cleaned: list[str] = []

        async def slow() -> None:
            try:
                await c.rt.sleep(10)
            finally:
                cleaned.append("finally")

        t0 = c.rt.now()
        try:
            await timeout(c.rt, 0.05, slow(), what="slow")
        except Timeout as exc:
            assert c.rt.now() - t0 < 5
            await c.rt.sleep(0)  # let the child's cancellation land
            return str(exc), cleaned
        return "no timeout", cleaned

    message, cleaned = harness.run(main)
    assert "slow timed out" in message
    assert cleaned == ["finally"]


def test_timeout_returns_value_in_time(harness: Harness) -> None:
    async def main(c: Ctx) -> str:
        async def quick() -> str:
            await c.rt.sleep(0.01)
            return "done"

        return await timeout(c.rt, 5, quick())

    assert harness.run(main) == "done"


def test_timeout_hands_a_result_nobody_receives_to_discard(harness: Harness) -> None:
    """The child finishes (say, with an open connection) in the very step its caller
    is cancelled: the result must reach ``discard`` rather than be dropped open."""
    async def main(c: Ctx) -> tuple[str, list[str]]:
        discarded: list[str] = []
        callers: list[Task[str]] = []

        async def child() -> str:
            await c.rt.sleep(0.01)
            callers[0].cancel("gave up")   # the caller is cancelled as we finish
            return "connection"

        async def caller() -> str:
            return await timeout(c.rt, 5, child(), discard=discarded.append)

        callers.append(c.rt.spawn(caller(), name="caller"))
        try:
            await callers[0]
        except Cancelled:
            outcome = "cancelled"
        else:
            outcome = "delivered"
        await c.rt.sleep(0.01)
        return outcome, discarded

    assert harness.run(main) == ("cancelled", ["connection"])


def test_cancel_sleeping_task_runs_finally(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[str, bool, list[str], str | None]:
        cleaned: list[str] = []

        async def body() -> None:
            try:
                await c.rt.sleep(10)
            finally:
                cleaned.append("finally")

        task = c.rt.spawn(body(), name="body")
        await c.rt.sleep(0.01)
        task.cancel("stop")
        try:
            await task
        except Cancelled:
            return "cancelled", task.cancelled(), cleaned, task.cancel_reason
        return "finished", task.cancelled(), cleaned, task.cancel_reason

    assert harness.run(main) == ("cancelled", True, ["finally"], "stop")


def test_cancel_before_start_never_runs_body(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[bool, bool]:
        started: list[bool] = []

        async def body() -> None:
            started.append(True)

        task = c.rt.spawn(body(), name="body")
        task.cancel()
        try:
            await task
        except Cancelled:
            return bool(started), task.cancelled()
        return bool(started), False

    assert harness.run(main) == (False, True)


def test_self_cancel_lands_at_next_await(harness: Harness) -> None:
    async def main(c: Ctx) -> list[str]:
        steps: list[str] = []
        holder: dict[str, Any] = {}

        async def body() -> None:
            await c.rt.sleep(0)
            holder["task"].cancel()
            steps.append("still running")
            try:
                await c.rt.sleep(1)
            except Cancelled:
                steps.append("cancelled")
                raise

        holder["task"] = c.rt.spawn(body(), name="self")
        try:
            await holder["task"]
        except Cancelled:
            steps.append("awaiter saw Cancelled")
        return steps

    assert harness.run(main) == ["still running", "cancelled", "awaiter saw Cancelled"]


def test_cancelling_a_finished_task_is_harmless(harness: Harness) -> None:
    async def main(c: Ctx) -> int:
        async def body() -> int:
            return 7

        task = c.rt.spawn(body(), name="body")
        value = await task
        task.cancel()
        return value + int(task.cancelled())

    assert harness.run(main) == 7


async def _cancel_blocked(c: Ctx, blocked: Any) -> str:
    """Run ``blocked`` as a task, cancel it while it waits; report how it ended."""
    cleaned: list[str] = []

    async def body() -> None:
        try:
            await blocked
        finally:
            cleaned.append("finally")

    task = c.rt.spawn(body(), name="blocked")
    await c.rt.sleep(0.02)
    if task.done():
        return "finished early"
    task.cancel()
    try:
        await task
    except Cancelled:
        return "cancelled" + ("+finally" if cleaned else "")
    return "not cancelled"


@pytest.mark.parametrize("primitive", ["queue-get", "queue-put", "lock", "event"])
def test_cancel_while_blocked_in_sync_primitive(harness: Harness, primitive: str) -> None:
    async def main(c: Ctx) -> tuple[str, Any]:
        if primitive.startswith("queue"):
            q: Queue[int] = Queue(c.rt, maxsize=1)
            if primitive == "queue-put":
                q.put_nowait(1)
                outcome = await _cancel_blocked(c, q.put(2))
                return outcome, (q.get_nowait(), len(q))   # the cancelled put added nothing
            outcome = await _cancel_blocked(c, q.get())
            q.put_nowait(5)                               # no item lost to the cancelled getter
            return outcome, await q.get()
        if primitive == "lock":
            lock = Lock(c.rt)
            await lock.acquire()
            outcome = await _cancel_blocked(c, lock.acquire())
            lock.release()
            await lock.acquire()                          # the lock is still usable
            return outcome, lock.locked()
        event = Event(c.rt)
        outcome = await _cancel_blocked(c, event.wait())
        event.set()
        await event.wait()
        return outcome, event.is_set()

    expected = {"queue-get": 5, "queue-put": (1, 0), "lock": True, "event": True}[primitive]
    assert harness.run(main) == ("cancelled+finally", expected)


def test_queue_bounds_and_close(harness: Harness) -> None:
    async def main(c: Ctx) -> list[Any]:
        out: list[Any] = []
        q: Queue[int] = Queue(c.rt, maxsize=2)
        await q.put(1)
        await q.put(2)
        out.append(q.full())
        putter = c.rt.spawn(q.put(3), name="putter")
        await c.rt.sleep(0.01)
        out.append(putter.done())          # blocked: the queue is full
        out.append(await q.get())
        await putter
        out.append(len(q))
        q.close()
        try:
            q.put_nowait(4)
        except ClosedError:
            out.append("put closed")
        out.append(await q.get())
        out.append(await q.get())
        try:
            await q.get()
        except ClosedError:
            out.append("get closed")
        return out

    assert harness.run(main) == [True, False, 1, 2, "put closed", 2, 3, "get closed"]


def test_queue_close_wakes_blocked_getter_with_reason(harness: Harness) -> None:
    async def main(c: Ctx) -> str:
        q: Queue[int] = Queue(c.rt)
        getter = c.rt.spawn(q.get(), name="getter")
        await c.rt.sleep(0.01)
        q.close(Timeout("upstream gone"))
        try:
            await getter
        except Timeout as exc:
            return str(exc)
        return "no error"

    assert harness.run(main) == "upstream gone"


def test_lock_hands_over_in_fifo_order_and_event_wakes_all(harness: Harness) -> None:
    async def main(c: Ctx) -> tuple[list[int], int]:
        lock, event = Lock(c.rt), Event(c.rt)
        order: list[int] = []
        woken: list[int] = []

        async def locker(i: int) -> None:
            async with lock:
                order.append(i)
                await c.rt.sleep(0.001)

        async def waiter(i: int) -> None:
            await event.wait()
            woken.append(i)

        await lock.acquire()
        lockers = []
        for i in range(4):
            lockers.append(c.rt.spawn(locker(i), name=f"l{i}"))
            await c.rt.sleep(0.002)  # queue up in a known order
        waiters = [c.rt.spawn(waiter(i), name=f"w{i}") for i in range(5)]
        lock.release()
        await c.rt.sleep(0.01)
        event.set()
        for t in lockers + waiters:
            await t
        return order, len(woken)

    assert harness.run(main) == ([0, 1, 2, 3], 5)

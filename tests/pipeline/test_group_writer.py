"""GroupWriter: poll outcomes and articles written in groups, the first at once or after a
short wait for company, each item getting its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ingest.errors import StoreError
from ingest.store.group import GroupWriter


def recorded() -> tuple[list[list[int]], Callable[[list[int]], Awaitable[list[int]]]]:
    """A write that records its groups and returns each item as its result."""
    groups: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        groups.append(items)
        return items

    return groups, write


def test_items_arriving_during_a_write_go_in_the_next_group() -> None:
    groups: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        groups.append(items)
        if len(groups) == 1:
            await release.wait()
        return [10 * n for n in items]

    async def main() -> None:
        writer = GroupWriter(write)
        first = asyncio.create_task(writer.add(0))
        for _ in range(3):  # a few turns of the loop, no timer
            await asyncio.sleep(0)
        assert groups == [[0]]  # written at once, not held for company
        rest = [asyncio.create_task(writer.add(n)) for n in range(1, 5)]
        await asyncio.sleep(0)
        assert not any(t.done() for t in [first, *rest])
        release.set()
        assert await asyncio.gather(first, *rest) == [0, 10, 20, 30, 40]

    asyncio.run(main())
    assert groups == [[0], [1, 2, 3, 4]]


def test_a_failed_write_fails_every_item_of_its_group_only() -> None:
    calls = 0

    async def write(items: list[int]) -> list[None]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if 2 in items:
            raise StoreError("database unreachable")
        return [None] * len(items)

    async def main() -> list[object]:
        writer = GroupWriter(write)
        first = asyncio.create_task(writer.add(1))
        await asyncio.sleep(0)
        group = [asyncio.create_task(writer.add(n)) for n in (2, 3)]
        results = await asyncio.gather(first, *group, return_exceptions=True)
        await writer.add(4)  # the writer goes on after a failure
        return results

    first, second, third = asyncio.run(main())
    assert first is None
    assert isinstance(second, StoreError)
    assert isinstance(third, StoreError)
    assert calls == 3


def test_a_cancelled_waiter_does_not_cancel_the_write() -> None:
    written: list[int] = []

    async def write(items: list[int]) -> list[None]:
        await asyncio.sleep(0.01)
        written.extend(items)
        return [None] * len(items)

    async def main() -> None:
        writer = GroupWriter(write)
        task = asyncio.create_task(writer.add(7))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await writer.add(8)

    asyncio.run(main())
    assert written == [7, 8]


def test_with_linger_the_first_item_waits_for_company() -> None:
    groups, write = recorded()

    async def main() -> None:
        writer = GroupWriter(write, linger=0.05)
        first = asyncio.create_task(writer.add(1))
        await asyncio.sleep(0.01)
        assert groups == []  # held for the others
        both = asyncio.create_task(writer.add_all([2, 3]))
        assert await first == 1
        assert await both == [2, 3]
        # Once written, the next item waits again.
        assert await writer.add(4) == 4

    asyncio.run(main())
    assert groups == [[1, 2, 3], [4]]


def test_items_that_came_in_during_a_write_wait_for_company_too() -> None:
    """With linger, the first item of every group waits for company, not only the first item
    after the writer was idle: one that came in while the group before it was written is not
    written alone as soon as that write ends."""
    groups: list[list[int]] = []
    writing, release = asyncio.Event(), asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        groups.append(items)
        if len(groups) == 1:
            writing.set()
            await release.wait()
        return items

    async def main() -> None:
        writer = GroupWriter(write, linger=0.2)
        first = asyncio.create_task(writer.add(1))
        await writing.wait()  # the first group is being written
        second = asyncio.create_task(writer.add(2))
        await asyncio.sleep(0)
        release.set()
        assert await first == 1
        for _ in range(3):
            await asyncio.sleep(0)
        assert groups == [[1]]  # 2 is held for company
        third = asyncio.create_task(writer.add(3))
        assert await asyncio.gather(second, third) == [2, 3]

    asyncio.run(main())
    assert groups == [[1], [2, 3]]


def test_a_full_group_is_written_at_once() -> None:
    groups, write = recorded()

    async def main() -> None:
        writer = GroupWriter(write, linger=60, limit=2)
        assert await asyncio.wait_for(writer.add_all([1, 2]), timeout=30) == [1, 2]
        # Also one that fills up while its first item waits for company.
        first = asyncio.create_task(writer.add(3))
        await asyncio.sleep(0.01)
        assert groups == [[1, 2]]
        assert await asyncio.wait_for(writer.add(4), timeout=30) == 4
        assert await first == 3

    asyncio.run(main())
    assert groups == [[1, 2], [3, 4]]


def test_a_writer_waits_for_company_in_a_later_event_loop_too() -> None:
    groups, write = recorded()

    writer = GroupWriter(write, linger=0.01, limit=5)

    async def main(n: int) -> None:
        assert await writer.add(n) == n

    asyncio.run(main(1))
    asyncio.run(main(2))
    assert groups == [[1], [2]]


def test_groups_hold_at_most_limit_items() -> None:
    groups, write = recorded()

    async def main() -> None:
        writer = GroupWriter(write, linger=0.01, limit=3)
        assert await writer.add_all(list(range(7))) == list(range(7))

    asyncio.run(main())
    assert groups == [[0, 1, 2], [3, 4, 5], [6]]


def test_items_a_stopped_writer_never_wrote_get_an_error_not_a_cancellation() -> None:
    """A waiter that ends cancelled inside a task group passes unnoticed; one that gets an
    error fails its feed."""
    started = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(10)
        return items

    async def main() -> None:
        writer = GroupWriter(write, linger=0.01)
        first = asyncio.create_task(writer.add(1))
        await started.wait()
        second = asyncio.create_task(writer.add(2))  # waits for the next group
        await asyncio.sleep(0)
        assert writer._drainer is not None
        writer._drainer.cancel()
        for task in (first, second):
            with pytest.raises(StoreError):
                await task

    asyncio.run(main())


def test_close_lets_a_write_finish_within_its_grace_and_stops_one_past_it() -> None:
    written: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        await asyncio.sleep(0.05 if items[0] < 10 else 10)
        written.append(items)
        return items

    async def main() -> None:
        writer = GroupWriter(write)
        quick = asyncio.create_task(writer.add(1))
        await asyncio.sleep(0)
        await writer.close(grace=5)
        assert await quick == 1
        slow = asyncio.create_task(writer.add(10))
        await asyncio.sleep(0)
        await writer.close(grace=0.05)  # cancelled: its transaction would roll back
        with pytest.raises(StoreError):
            await slow
        assert await writer.add(2) == 2  # the writer starts again

    asyncio.run(main())
    assert written == [[1], [2]]


def test_close_passes_a_cancellation_of_its_caller_on() -> None:
    async def write(items: list[int]) -> list[int]:
        await asyncio.sleep(10)
        return items

    async def main() -> None:
        writer = GroupWriter(write)
        adding = asyncio.create_task(writer.add(1))
        await asyncio.sleep(0)
        closing = asyncio.create_task(writer.close(grace=5))
        await asyncio.sleep(0.01)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        adding.cancel()

    asyncio.run(main())


def test_a_waiter_cancelled_before_its_group_is_written_withdraws_its_items() -> None:
    """A feed handed back (its task cancelled) while its articles wait for company must not
    have them written afterwards: another replica may own the feed by then."""
    written: list[int] = []

    async def write(items: list[int]) -> list[None]:
        written.extend(items)
        return [None] * len(items)

    async def main() -> None:
        writer = GroupWriter(write, linger=0.05)
        gone = asyncio.create_task(writer.add_all([1, 2]))
        stays = asyncio.create_task(writer.add(3))
        await asyncio.sleep(0.01)  # both wait for the group
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert await stays is None
        assert await writer.add(4) is None

    asyncio.run(main())
    assert written == [3, 4]


def test_a_waiter_cancelled_during_its_write_hears_of_it_once_the_write_is_done() -> None:
    """A feed failing while a group of its articles is being written hands its lease back
    only after that group is in: the cancellation of its other pages reaches them then."""
    events: list[str] = []

    async def write(items: list[int]) -> list[None]:
        await asyncio.sleep(0.05)
        events.append("written")
        return [None] * len(items)

    async def main() -> None:
        writer = GroupWriter(write)
        task = asyncio.create_task(writer.add(7))
        await asyncio.sleep(0.01)  # in the write
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events.append("cancelled")

    asyncio.run(main())
    assert events == ["written", "cancelled"]


def test_close_ends_the_wait_of_a_waiter_cancelled_during_a_hanging_write() -> None:
    async def write(items: list[int]) -> list[None]:
        await asyncio.sleep(60)
        return [None] * len(items)

    async def main() -> None:
        writer = GroupWriter(write)
        task = asyncio.create_task(writer.add(7))
        await asyncio.sleep(0.01)
        task.cancel()
        await writer.close(0.05)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)

    asyncio.run(main())


def _refused() -> StoreError:
    return StoreError("CheckViolation: new row violates a check constraint")


def _down() -> StoreError:
    import psycopg

    try:
        raise psycopg.OperationalError("connection refused")
    except psycopg.OperationalError as cause:
        error = StoreError("database unreachable: connection refused")
        error.__cause__ = cause
        return error


def test_a_group_refused_for_one_part_is_written_again_a_part_at_a_time() -> None:
    """`by_parts`: the group fails for the items of part "b"; each part is written again on
    its own, and each item gets its part's result or error, in the items' order."""
    from ingest.store.group import by_parts

    writes: list[list[tuple[str, int]]] = []

    async def write(items: list[tuple[str, int]]) -> list[int]:
        writes.append(items)
        if any(part == "b" for part, _ in items):
            raise _refused()
        return [n * 10 for _, n in items]

    items = [("a", 1), ("b", 2), ("a", 3), ("c", 4)]
    outcomes = asyncio.run(by_parts(write, items, lambda item: item[0]))
    assert outcomes[0] == 10
    assert isinstance(outcomes[1], StoreError)
    assert outcomes[2:] == [30, 40]
    assert writes == [items, [("a", 1), ("a", 3)], [("b", 2)], [("c", 4)]]


def test_a_group_of_one_part_or_an_unreachable_database_raises() -> None:
    """Nothing to tell apart in a group of one part, and nothing worth trying again part by
    part against a database that cannot be reached; once it is unreachable while the parts
    are written, the parts after get that error without a try."""
    from ingest.store.group import by_parts

    async def refuse(items: list[tuple[str, int]]) -> list[int]:
        raise _refused()

    with pytest.raises(StoreError, match="CheckViolation"):
        asyncio.run(by_parts(refuse, [("a", 1), ("a", 2)], lambda item: item[0]))

    async def down(items: list[tuple[str, int]]) -> list[int]:
        raise _down()

    with pytest.raises(StoreError, match="unreachable"):
        asyncio.run(by_parts(down, [("a", 1), ("b", 2)], lambda item: item[0]))

    tries: list[list[tuple[str, int]]] = []

    async def goes_down(items: list[tuple[str, int]]) -> list[int]:
        tries.append(items)
        raise _refused() if len(tries) == 1 else _down()

    outcomes = asyncio.run(by_parts(goes_down, [("a", 1), ("b", 2), ("c", 3)], lambda i: i[0]))
    assert len(tries) == 2  # the group, then part "a"; "b" and "c" are not tried
    assert all(isinstance(o, StoreError) and "unreachable" in str(o) for o in outcomes)

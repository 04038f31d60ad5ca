"""catalogdb.pipeline: bounded queues, errors raised in the caller, every thread stopped and joined."""

from __future__ import annotations

import itertools
import threading
import traceback

import pytest

from catalogdb.pipeline import pipeline

NAME = "pipeline-under-test"


def alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(NAME)]


class Source:
    """An endless (or `fail_at`-failing) source that records how far it got and whether it was closed."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.produced = 0
        self.closed = False

    def __iter__(self):
        try:
            for i in itertools.count():
                if i == self.fail_at:
                    raise ValueError(f"bad row {i}")
                self.produced += 1
                yield i
        finally:
            self.closed = True


def test_items_pass_through_every_stage_in_order():
    with pipeline(range(100), lambda x: x * 2, lambda x: x + 1, maxsize=3, name=NAME) as items:
        assert list(items) == [2 * i + 1 for i in range(100)]
    assert alive() == []


def test_error_in_the_source_is_raised_with_its_traceback():
    source = Source(fail_at=5)
    with pytest.raises(ValueError, match="bad row 5") as info:
        with pipeline(source, lambda x: x, name=NAME) as items:
            list(items)
    assert "__iter__" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert source.closed and alive() == []


def test_error_in_a_middle_stage_stops_the_source_and_the_later_stages():
    source = Source()
    reached_last = []

    def middle(i: int) -> int:
        if i == 3:
            raise ZeroDivisionError("stage failed on item 3")
        return i

    with pytest.raises(ZeroDivisionError, match="stage failed on item 3") as info:
        with pipeline(source, middle, reached_last.append, name=NAME) as items:
            for _ in items:
                pass
    assert "middle" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert source.closed and alive() == []
    assert reached_last == [0, 1, 2][:len(reached_last)]  # stopped promptly: maybe before the queued ones


def test_error_in_the_consumer_stops_a_producer_blocked_on_a_full_queue():
    source = Source()  # endless: its queue is full while the consumer fails
    with pytest.raises(RuntimeError, match="consumer died"):
        with pipeline(source, maxsize=1, name=NAME) as items:
            next(items)
            raise RuntimeError("consumer died")
    assert source.closed and alive() == []


def test_a_dead_last_stage_releases_the_producer_waiting_on_its_full_queue():
    source = Source()
    entered = threading.Event()
    release = threading.Event()

    def slow_then_dead(i: int) -> int:
        entered.set()
        release.wait()  # the source fills the queue meanwhile
        raise OSError("writer lost its connection")

    with pytest.raises(OSError, match="writer lost its connection"):
        with pipeline(source, slow_then_dead, maxsize=1, name=NAME) as items:
            entered.wait()
            release.set()
            list(items)
    assert source.closed and alive() == []
    # bounded: at most the item in the stage, one in the queue and one waiting to be put
    assert source.produced <= 3


def test_early_stop_closes_the_source_and_joins():
    source = Source()
    with pipeline(source, lambda x: -x, name=NAME) as items:
        first = [next(items) for _ in range(4)]
    assert first == [0, -1, -2, -3]
    assert source.closed and alive() == []


def test_keyboard_interrupt_in_the_caller_stops_everything():
    source = Source()
    with pytest.raises(KeyboardInterrupt):
        with pipeline(source, lambda x: x, name=NAME) as items:
            next(items)
            raise KeyboardInterrupt
    assert source.closed and alive() == []

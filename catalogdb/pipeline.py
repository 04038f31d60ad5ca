"""Bounded producer/consumer pipelines: a source and its stages each in a thread, joined by bounded queues.

`pipeline(source, *stages)` is a context manager yielding the last stage's items to the caller's thread:

    with pipeline(read_batches(), predict_batch, maxsize=2) as batches:
        for batch in batches:
            write(batch)

- Every queue holds at most `maxsize` items, so a fast producer waits for a slow consumer.
- An exception in the source or in a stage stops every other thread and is raised in the caller's thread
  (the same exception object, so its message and original traceback are kept).
- When the caller leaves the block early (break, an exception of its own, KeyboardInterrupt), the source
  and stages stop, the source iterator is closed (its `finally` blocks run) and every thread is joined.
- No put or get waits forever: each waits in short slices and gives up once the pipeline is stopping,
  so a producer never hangs on a full queue whose consumer has died.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

POLL_S = 0.05  # how long a blocked put/get waits before it checks whether the pipeline is stopping
_END = object()  # the marker a thread sends after its last item


class _Stopping(Exception):
    """Raised inside a thread when the pipeline is stopping: its work is abandoned."""


class _Flow:
    """The stop event, the first error, and the bounded put/get that respect them."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if not self.errors:
                self.errors.append(exc)
        self.stop.set()

    def put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopping
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue, caller: bool = False) -> Any:
        while True:
            if caller and self.errors:
                raise self.errors[0]
            if self.stop.is_set():
                raise _Stopping
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue


def _produce(flow: _Flow, source: Iterable, out: queue.Queue) -> None:
    iterator = iter(source)
    try:
        for item in iterator:
            flow.put(out, item)
        flow.put(out, _END)
    except _Stopping:
        pass
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
        flow.fail(exc)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:  # noqa: BLE001 - same: the caller raises it
                flow.fail(exc)


def _transform(flow: _Flow, stage: Callable[[Any], Any], inbox: queue.Queue, out: queue.Queue) -> None:
    try:
        while (item := flow.get(inbox)) is not _END:
            flow.put(out, stage(item))
        flow.put(out, _END)
    except _Stopping:
        pass
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
        flow.fail(exc)


@contextmanager
def pipeline(source: Iterable, *stages: Callable[[Any], Any], maxsize: int = 2,
             name: str = "pipeline") -> Iterator[Iterator[Any]]:
    """Run source and each stage in its own thread; yield an iterator over the last stage's results."""
    flow = _Flow()
    queues = [queue.Queue(maxsize=maxsize) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=_produce, args=(flow, source, queues[0]), name=f"{name}-source", daemon=True)]
    threads += [threading.Thread(target=_transform, args=(flow, stage, queues[i], queues[i + 1]),
                                 name=f"{name}-stage{i + 1}", daemon=True) for i, stage in enumerate(stages)]

    def results() -> Iterator[Any]:
        while (item := flow.get(queues[-1], caller=True)) is not _END:
            yield item

    def halt() -> None:
        flow.stop.set()
        for thread in threads:
            thread.join()

    for thread in threads:
        thread.start()
    try:
        yield results()
    except BaseException:
        halt()
        raise
    halt()
    if flow.errors:  # a thread failed after the caller stopped reading: still an error
        raise flow.errors[0]

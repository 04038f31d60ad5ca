"""Per-spectrum work on Dask workers: the chunk sources `ingest spectra --dask` and `predict --dask` swap in.

The driver (the `catalogdb` process) keeps the database: it lists the files, reads the spectra to
predict, and writes every result through the same COPY path as a local run, batch by batch, so the
atomicity and resumability of the local run hold unchanged. The workers only see files: spectrum
FITS files to preprocess, or the model folder to predict with, at the same paths as the driver (a
shared file system on a cluster). At most a few chunks per worker thread are in flight, so a run over
millions of spectra never holds more than those in memory.

ADDRESS is a scheduler address (tcp://host:8786, as dask-jobqueue or dask-kubernetes print it), or
`local` / `local:N` for a LocalCluster of N worker processes (default 2) on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from catalogdb.errors import BadInput
from catalogdb.spectra import FILES_PER_CHUNK, ProcessedSpectrum, process_chunk

if TYPE_CHECKING:
    from distributed import Client

    from catalogdb.cnn.predict import Batch
    from catalogdb.cnn.registry import LoadedModel

LOCAL = "local"
LOCAL_WORKERS = 2
IN_FLIGHT_PER_THREAD = 2  # chunks queued per worker thread: one running, one ready to start


def local_workers(address: str) -> int | None:
    """Workers of the LocalCluster that `local[:N]` asks for; None for a scheduler address."""
    if address != LOCAL and not address.startswith(LOCAL + ":"):
        return None
    count = address.partition(":")[2] or str(LOCAL_WORKERS)
    if not count.isdigit() or int(count) < 1:
        raise BadInput(f"--dask {address!r}: expected local, local:N (N >= 1 workers) or a scheduler address")
    return int(count)


@contextmanager
def client(address: str, processes: bool = True) -> Iterator[Client]:
    """A distributed.Client on the scheduler at `address`, or on a LocalCluster for `local[:N]`."""
    from distributed import Client, LocalCluster

    workers = local_workers(address)
    if workers is None:
        try:
            dask_client = Client(address, timeout="30s")
        except OSError as exc:
            raise BadInput(f"--dask {address!r}: no Dask scheduler answers there ({exc})") from None
        with dask_client:
            yield dask_client
        return
    # One thread per worker with one BLAS thread, as spectra.process_files gives its processes.
    # Processes listen on 127.0.0.1 only, at free ports (threads talk in-process): runs never collide.
    options = {"host": "127.0.0.1", "env": {key: "1" for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                   "MKL_NUM_THREADS")}} if processes else {}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address="127.0.0.1:0",
                      **options) as cluster, Client(cluster) as dask_client:
        yield dask_client


def _threads(dask_client: Client) -> int:
    return max(sum(dask_client.nthreads().values()), 1)


def bounded_map(dask_client: Client, func: Callable[..., Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """(item, func(item)) for every item, computed on the workers, a bounded number in flight, in finish order."""
    from distributed import as_completed

    items = iter(items)
    limit = IN_FLIGHT_PER_THREAD * _threads(dask_client)
    pending: dict[Any, Any] = {}

    def submit(item: Any) -> Any:
        # pure=False: two equal chunks (a retried batch) are two tasks, not one cached result
        future = dask_client.submit(func, item, pure=False)
        pending[future] = item
        return future

    running = as_completed([submit(item) for item in islice(items, limit)])
    try:
        for future in running:
            item = pending.pop(future)
            result = future.result()  # a worker's exception is raised here, in the driver
            future.release()
            for more in islice(items, 1):
                running.add(submit(more))
            yield item, result
    finally:
        for future in pending:
            future.cancel()



def process_files(paths: Iterable[str | os.PathLike[str]], address: str,
                  chunksize: int = FILES_PER_CHUNK) -> Iterator[ProcessedSpectrum]:
    """spectra.process_files on Dask workers: each file read and preprocessed where a worker sees it."""
    names = (os.fspath(p) for p in paths)
    chunks = iter(lambda: list(islice(names, chunksize)), [])
    with client(address) as dask_client:
        first = next(chunks, None)
        # a worker that cannot see the files would reject every one of them as unreadable: refuse instead
        if first and not dask_client.submit(os.path.exists, first[0], pure=False).result():
            raise BadInput(f"--dask {address}: the workers cannot read {first[0]}; they must see the spectrum "
                           "files at the same paths as this machine (a shared file system)")
        for _, results in bounded_map(dask_client, process_chunk, chain([first] if first else [], chunks)):
            yield from results


_MODELS: dict[tuple[str, str], LoadedModel] = {}


def _predict_on_worker(path: str, model_id: str, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """A batch's ensemble mean and spread, the model loaded once per worker process from its folder."""
    from catalogdb.cnn.registry import load_folder

    if (path, model_id) not in _MODELS:
        _MODELS[path, model_id] = load_folder(Path(path), model_id)
    return _MODELS[path, model_id].predict(batch.flux)


def predicted(batches: Iterable[Batch], model: LoadedModel, address: str) -> Iterator[Batch]:
    """Each batch with its predictions (mean, spread) computed on Dask workers, in finish order."""
    if model.path is None:
        raise BadInput(f"model {model.model_id!r} has no folder the workers could load it from")
    work = partial(_predict_on_worker, str(model.path), model.model_id)
    with client(address) as dask_client:
        for batch, (mean, spread) in bounded_map(dask_client, work, batches):
            batch.mean, batch.spread = mean, spread
            yield batch

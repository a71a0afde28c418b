"""PDF extraction in worker processes: PDFium is not thread-safe, and a hostile PDF can hang
it or crash it. A process pool isolates both; a call that overruns its timeout has its process
killed and the pool replaced, and the document is archived with the error.

Inside a Celery prefork child the work already runs in its own process, under the task's time
limit, so extraction runs inline there.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from worker.extract.formats import Extracted, extract_pdf

log = logging.getLogger(__name__)


def _context() -> multiprocessing.context.BaseContext:
    """forkserver: children fork from a clean single-threaded server (the poll holds threads,
    sockets and database pools, unsafe to fork), and, unlike spawn, they never re-run the
    parent's ``__main__`` script. Only PDF extraction is preloaded."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["worker.extract.formats", "pypdfium2"])
    return context


class PdfPool:
    """A small spawn-started process pool with a per-call timeout."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=_context())
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """Kill the pool's processes (a hung PDFium ignores everything else)."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def extract(
        self, path: Path, timeout: float, function: Callable[[Path], Extracted] = extract_pdf
    ) -> Extracted:
        """``function(path)`` in a worker process (tests pass their own function)."""
        for attempt in (1, 2):
            executor = self._pool()
            try:
                future: Future[Extracted] = executor.submit(function, Path(path))
                return future.result(timeout=timeout)
            except FutureTimeout:
                self._discard(executor)
                return Extracted(error=f"PDF extraction timed out after {timeout:g} s")
            except BrokenProcessPool:
                # Our own PDF crashed the extractor, or another caller's did (then retry).
                self._discard(executor)
                if attempt == 2:
                    return Extracted(error="the PDF crashed the extractor (PDFium)")
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_pool = PdfPool()
atexit.register(_pool.close)


def in_worker_process() -> bool:
    """True in a Celery prefork child, where the task is already isolated in a process."""
    import sys

    if "billiard" not in sys.modules:
        return False
    from billiard.process import current_process

    return "PoolWorker" in current_process().name


def extract_pdf_isolated(path: Path, timeout: float = 120.0) -> Extracted:
    """:func:`worker.extract.formats.extract_pdf`, never in this process's threads."""
    if in_worker_process():
        return extract_pdf(path)
    return _pool.extract(path, timeout)

"""Helper processes that prepare bulk lines while the server stores the previous batch.

Parsing, validating and analysing a line is pure Python CPU work, about half of
what a bulk line costs; in the server's own threads it would only take turns
with storing under the GIL. ``bulk.processes`` helper processes give it the
other cores: batch k+1 is prepared there while batch k commits here.

A helper holds no database connection, no keys and no state: lines go in,
pickled work items come out, over a local pipe (the same machine and trust
boundary as the server). Helpers are spawned (they share nothing with the
server's threads) when the first bulk request arrives, and that request does
not wait for them: its lines are prepared in-process until they are up. A
helper that dies is replaced; its batch is prepared in-process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor


def _warm() -> int:
    """Run once in each new helper: import the preparation code before real work arrives.

    Then freeze what the imports left (modules, compiled schemas) out of the garbage
    collector's way, and let young objects pile up longer between collections: a
    batch's reports are garbage once it is answered, and walking the long-lived
    heap again and again about doubled the cost of parsing a batch (measured).
    """
    import sluicegate.adapters.finance.bulk_lines  # noqa: F401

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    return os.getpid()


class HelperPool:
    """A lazily started process pool; :meth:`ready` never blocks on start-up."""

    def __init__(self, processes: int) -> None:
        self.processes = processes if (os.cpu_count() or 1) > 1 else 0
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._warming: list[Future[int]] = []

    def ready(self) -> ProcessPoolExecutor | None:
        """The pool once its helpers are up; None until then (and the first call starts them)."""
        if self.processes < 1:
            return None
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn")
                )
                self._warming = [self._executor.submit(_warm) for _ in range(self.processes)]
                return None
            if not all(f.done() for f in self._warming):
                return None
            if any(f.exception() is not None for f in self._warming):
                self._reset()
                self.processes = 0  # helpers cannot start here: stay in-process
                return None
            return self._executor

    def broken(self) -> None:
        """A helper died mid-batch: drop the pool; the next call starts a fresh one."""
        with self._lock:
            self._reset()

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor, self._warming = None, []

"""Group commit, whatever the database: one writer task commits the operations queued while
its previous batch ran, together in one transaction, and tries each alone when that fails.

How a batch runs (transactions, savepoints, the database's thread) and which errors mean the
storage is failing belong to the backend, which hands them in; nothing here knows SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from storage.base import StorageError

log = logging.getLogger(__name__)

C = TypeVar("C")  # the connection an operation runs on
Q = TypeVar("Q")  # what a coalesced read is asked
A = TypeVar("A")  # what it answers

Operation = Callable[[C], Any]
# Runs operations on the connection, in order, and returns one outcome per operation: its
# result, or the exception it raised (that operation alone rolled back).
Batch = Callable[[list[Operation[C]]], Awaitable[list[Any]]]


class BeginFailed(Exception):
    """No transaction could be started: no operation of the batch ran."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class GroupCommit(Generic[C]):
    """The single writer of one database: operations that arrive while a batch runs are
    committed together in the next one, so under load a thousand writes cost one commit.

    `run_batch` runs a batch in one transaction: it raises BeginFailed when none could be
    started, and any other exception when the transaction as a whole failed (its COMMIT,
    say); then `run_each` runs every operation of the batch in a transaction of its own, so
    none is reported saved unless it is, and one that cannot be saved does not take the
    others down. `classify` turns what each caller receives into the backend's
    StorageError when it means the storage is failing. A checkpoint waits for everything
    queued before it to be committed, then for `after_commit`, run once for every
    checkpoint of the batch.
    """

    def __init__(
        self,
        run_batch: Batch[C],
        run_each: Batch[C],
        classify: Callable[[BaseException], BaseException],
        after_commit: Callable[[], Awaitable[bool]],
    ) -> None:
        self._run_batch = run_batch
        self._run_each = run_each
        self._classify = classify
        self._after_commit = after_commit
        self._closing = False
        # None in place of an operation is a checkpoint.
        self._pending: list[tuple[Operation[C] | None, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Take operations (again, after close)."""
        self._closing = False

    async def close(self) -> None:
        """Refuse new operations and wait until every queued one has its outcome."""
        self._closing = True
        while self._drainer is not None and not self._drainer.done():
            with contextlib.suppress(Exception):
                await self._drainer

    def submit(self, op: Operation[C]) -> asyncio.Future[Any]:
        """Queue op for the next batch; its future holds the outcome."""
        return self._enqueue(op)

    def checkpoint(self) -> asyncio.Future[bool]:
        """Queue a checkpoint: once everything queued before it is committed, its future
        holds what `after_commit` answered (one call for all checkpoints of a batch)."""
        return self._enqueue(None)

    def _enqueue(self, op: Operation[C] | None) -> asyncio.Future[Any]:
        if self._closing:
            raise StorageError("storage failing: the storage is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            ops = [(op, future) for op, future in batch if op is not None]
            checkpoints = [future for op, future in batch if op is None]
            await self._commit(ops)
            if checkpoints:  # every checkpoint of the batch shares one call, after its commit
                done = await self._after_commit()
                for future in checkpoints:
                    if not future.done():
                        future.set_result(done)

    async def _commit(self, batch: list[tuple[Operation[C], asyncio.Future[Any]]]) -> None:
        """Run a batch of operations in one transaction and hand each caller its outcome."""
        if not batch:
            return
        ops = [op for op, _ in batch]
        outcomes: list[Any]
        try:
            outcomes = await self._run_batch(ops)
        except BeginFailed as failed:  # nothing ran: no use trying each alone
            outcomes = [failed.error] * len(batch)
        except Exception as error:
            if len(batch) == 1:
                outcomes = [error]
            else:  # the COMMIT (or the batch's own bookkeeping) failed: each alone
                log.warning(
                    "storage: a batch of %d failed (%s); trying each alone",
                    len(batch),
                    self._classify(error),
                )
                try:
                    outcomes = await self._run_each(ops)
                except Exception as again:  # the connection itself is gone
                    outcomes = [again] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(self._classify(outcome))
            else:
                future.set_result(outcome)


class Coalesced(Generic[Q, A]):
    """Reads that arrive while one is on its way go together in the next (`read_many`, one
    round trip for all), as group commit does for writes. Each batch starts after every
    read in it was asked, so it sees all that was committed before (a caller's own writes
    too). If the batch fails, each of its callers gets the error."""

    def __init__(self, read_many: Callable[[list[Q]], Awaitable[list[A]]]) -> None:
        self._read_many = read_many
        self._pending: list[tuple[Q, asyncio.Future[A]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def read(self, asked: Q) -> A:
        """The answer to `asked`, read with the others asked meanwhile."""
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._pending.append((asked, future))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                answers = await self._read_many([asked for asked, _ in batch])
            except BaseException as error:
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(error, Exception):
                        future.set_exception(error)
                    else:  # cancelled (the loop is ending): so are the reads
                        future.cancel()
                if not isinstance(error, Exception):
                    raise
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

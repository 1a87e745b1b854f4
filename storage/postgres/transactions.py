"""How operations meet PostgreSQL's transactions and errors: one operation in a transaction
of its own on a pool connection; a batch of them in one transaction (group commit), a
savepoint each once one of them failed; a deadlock or a serialization failure tried again;
and which errors become StorageError, with a message that names the failure and never the
data (nor the database URL: it may hold a password).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from storage.base import StorageError
from storage.batching import BeginFailed, Operation

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Operation[asyncpg.Connection]  # returns an awaitable: the operation's SQL on the connection

# How often a transaction that lost a deadlock (or a serialization failure) is tried again;
# each try waits a little longer, at random, so that the two losers do not meet again.
ATTEMPTS = 5
BACKOFF_S = 0.005

# Tried again: nothing of the transaction was saved, and the same work will succeed later.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


def describe(error: BaseException) -> str:
    """What failed, in words that hold no data: the error's class and SQLSTATE code (the
    server's message may quote a value; a client error's may quote the URL)."""
    name = type(error).__name__
    if isinstance(error, asyncpg.PostgresError):
        return f"{name} (SQLSTATE {error.sqlstate})"
    if isinstance(error, OSError) and error.errno is not None:
        return f"cannot reach the database server: {name} (errno {error.errno})"
    if isinstance(error, OSError | TimeoutError):
        return f"cannot reach the database server: {name}"
    if isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return f"the connection failed: {name}"
    return name


def failing(error: BaseException) -> bool:
    """Whether an error comes from the database or the connection to it (the server, the
    network, the pool, the client library's view of the connection), not from the bot's
    own code."""
    return isinstance(
        error,
        asyncpg.PostgresError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | OSError
        | TimeoutError,
    )


def as_storage_error(error: BaseException) -> BaseException:
    """A StorageError for an error of the database or the connection (chained to the cause,
    which never holds the URL); other errors unchanged."""
    if isinstance(error, StorageError) or not failing(error):
        return error
    wrapped = StorageError(f"storage failing: {describe(error)}")
    wrapped.__cause__ = error
    return wrapped


def connect_error(error: BaseException) -> StorageError:
    """A StorageError for a failure to connect or to read the URL. Not chained: an error
    about the URL may quote it."""
    if isinstance(error, ValueError):  # asyncpg's ClientConfigurationError is one too
        return StorageError(
            f"storage failing: the database URL is not usable ({type(error).__name__})"
        )
    return StorageError(f"storage failing: cannot connect: {describe(error)}")


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(BACKOFF_S * (2**attempt) * (0.5 + random.random()))


async def in_transaction(
    pool: asyncpg.Pool,
    op: Callable[[asyncpg.Connection], Awaitable[T]],
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Run op in a transaction of its own on a pool connection; a deadlock, a serialization
    failure (or one of `retry_on`) rolls it back and tries it again."""
    for attempt in range(ATTEMPTS):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await op(conn)
        except (*TRANSIENT, *retry_on) as error:
            if attempt == ATTEMPTS - 1:
                raise
            log.info("storage: a transaction is tried again after %s", describe(error))
            await _backoff(attempt)
    raise AssertionError("unreachable")


async def alone(pool: asyncpg.Pool, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run op on a pool connection outside any explicit transaction: each of its statements
    commits on its own (one statement, or reads)."""
    for attempt in range(ATTEMPTS):
        try:
            async with pool.acquire() as conn:
                return await op(conn)
        except TRANSIENT as error:
            if attempt == ATTEMPTS - 1:
                raise
            log.info("storage: a statement is tried again after %s", describe(error))
            await _backoff(attempt)
    raise AssertionError("unreachable")


class _OpFailed(Exception):
    """An operation of a batch run without savepoints raised: the batch is run again."""


class Batches:
    """How GroupCommit runs a batch here: on one pool connection, in one transaction."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def run_batch(self, ops: list[Op]) -> list[Any]:
        """The batch in one transaction. Operations run straight, one after another; if one
        raises, the transaction is rolled back and the batch runs again with a savepoint per
        operation, so that one's failure is its own. A deadlock runs the whole batch again;
        BeginFailed when no connection or transaction could be had (nothing ran)."""
        try:
            conn = await self._pool().acquire()
        except Exception as error:
            raise BeginFailed(error) from error
        try:
            for attempt in range(ATTEMPTS):
                try:
                    try:
                        return await _in_transaction(conn, ops, savepoints=False)
                    except _OpFailed:
                        return await _in_transaction(conn, ops, savepoints=True)
                except TRANSIENT as error:
                    if attempt == ATTEMPTS - 1:
                        raise
                    log.info(
                        "storage: a batch of %d is tried again after %s", len(ops), describe(error)
                    )
                    await _backoff(attempt)
            raise AssertionError("unreachable")
        finally:
            with contextlib.suppress(Exception):
                await self._pool().release(conn)

    async def run_each(self, ops: list[Op]) -> list[Any]:
        """A batch whose transaction failed: each operation in a transaction of its own."""
        results: list[Any] = []
        for op in ops:
            try:
                results.extend(await self.run_batch([op]))
            except BeginFailed as failed:
                results.append(failed.error)
            except Exception as error:
                results.append(error)
        return results


def _runs(ops: list[Op]) -> list[list[Op]]:
    """The batch cut into runs sent in one round trip each: consecutive operations of a
    class with a `run_together` (a pledge, queries.PledgeOp) go together; others alone."""
    runs: list[list[Op]] = []
    for op in ops:
        if runs and hasattr(op, "run_together") and type(op) is type(runs[-1][0]):
            runs[-1].append(op)
        else:
            runs.append([op])
    return runs


async def _in_transaction(conn: asyncpg.Connection, ops: list[Op], savepoints: bool) -> list[Any]:
    transaction = conn.transaction()
    try:
        await transaction.start()
    except Exception as error:
        raise BeginFailed(error) from error
    results: list[Any] = []
    try:
        if not savepoints:
            for run in _runs(ops):
                try:
                    if len(run) == 1:
                        results.append(await run[0](conn))
                    else:
                        results.extend(await run[0].run_together(conn, run))  # type: ignore[attr-defined]
                except TRANSIENT:
                    raise
                except Exception as error:
                    raise _OpFailed from error
            ops = []
        for op in ops:
            try:
                async with conn.transaction():  # a savepoint: rolled back alone
                    results.append(await op(conn))
            except TRANSIENT:
                raise
            except (
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                OSError,
            ):
                raise  # the connection is gone, and the batch with it
            except Exception as error:
                results.append(error)
        await transaction.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            await transaction.rollback()
        raise
    return results

"""SQLite's side of group commit: how a batch runs on the sqlite3 connection (one transaction;
a savepoint per operation once one of them failed; or each operation alone), and which
SQLite errors mean the storage itself is failing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from storage.base import StorageError
from storage.batching import BeginFailed, Operation

Op = Operation[sqlite3.Connection]

# Primary result codes that mean the storage itself is failing, not the operation.
_FAILING = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOLFS,
    }
)


def failing(error: BaseException) -> bool:
    """Whether an error means the storage is failing (full, read-only, I/O, closed)."""
    if isinstance(error, sqlite3.Error) and error.sqlite_errorcode is not None:
        return error.sqlite_errorcode & 0xFF in _FAILING
    if isinstance(error, sqlite3.ProgrammingError | ValueError):
        return "closed" in str(error).lower()
    return False


def as_storage_error(error: BaseException) -> BaseException:
    """A StorageError for a failing storage (chained to the cause); other errors unchanged."""
    if isinstance(error, StorageError) or not failing(error):
        return error
    code = getattr(error, "sqlite_errorname", None) or type(error).__name__
    wrapped = StorageError(f"storage failing: {code}: {error}")
    wrapped.__cause__ = error
    return wrapped


class _OpFailed(Exception):
    """An operation of a batch run without savepoints raised: the batch is run again."""


def run_batch(db: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Runs on the database thread: one transaction for the whole batch. Operations run
    straight, one after another; if one raises, the transaction is rolled back and the
    batch runs again with a savepoint per operation, so that one's failure is its own.
    (Two statements fewer per operation on the way that matters: failures are rare.)"""
    try:
        return _in_transaction(db, ops, savepoints=False)
    except _OpFailed:
        return _in_transaction(db, ops, savepoints=True)


def _in_transaction(db: sqlite3.Connection, ops: list[Op], savepoints: bool) -> list[Any]:
    if db.in_transaction:  # left open by a ROLLBACK that failed: nothing in it was saved
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        raise BeginFailed(error) from error
    results: list[Any] = []
    try:
        for op in ops:
            if not savepoints:
                try:
                    results.append(op(db))
                except Exception as error:
                    raise _OpFailed from error
                continue
            db.execute("SAVEPOINT op")
            try:
                results.append(op(db))
            except Exception as error:
                try:
                    db.execute("ROLLBACK TO op")
                except sqlite3.Error:
                    # SQLite rolled the whole transaction back (a full disk can): the
                    # batch is lost, and each operation is tried alone.
                    raise error from None
                results.append(error)
            db.execute("RELEASE op")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    return results


def run_each(db: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Runs on the database thread: each operation in its own transaction."""
    results: list[Any] = []
    for op in ops:
        try:
            results.extend(run_batch(db, [op]))
        except BeginFailed as failed:
            results.append(failed.error)
        except Exception as error:
            results.append(error)
    return results


def run_reads(db: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Runs on the reader's thread: each read in turn, each outcome (or error) its own."""
    results: list[Any] = []
    for op in ops:
        try:
            results.append(op(db))
        except Exception as error:
            results.append(error)
    return results

"""SQLite storage on aiosqlite: WAL, explicit write transactions, group commit.

Every operation is a plain function over the sqlite3 connection, run on aiosqlite's worker
thread. Operations that arrive while a batch runs are committed together in the next one
(each inside its own SAVEPOINT, so one failing operation rolls back alone): under load a
thousand pledges cost one thread hop and one commit instead of a thousand. If the COMMIT
itself fails, each operation of the batch is tried again alone, so none is reported saved
unless it is, and one that cannot be saved does not take the others down.

Erasing (/forget, opting out, the campaign's end) leaves no copy in the files: secure_delete
zeroes freed cells, then the WAL is checkpointed into the main file and cut to zero bytes.
Erasures queued in the same batch share one cut. A cut that fails (a reader holds the WAL,
the disk fails) is owed: done at the next erasure, at close, and at every open, which also
finishes one a kill interrupted.

A storage failure (disk full, read-only file, I/O error) reaches callers as StorageError.

The package, by reason: store.py is the Storage contract (SQLiteStorage), queries.py its SQL,
schema.py the file's pragmas, migrations and WAL cut, transactions.py how a batch meets
SQLite's transactions and errors; the writer itself is storage/batching.py, which knows no SQL.
"""

from storage.sqlite.store import SQLiteStorage

__all__ = ["SQLiteStorage"]

"""PostgreSQL storage on asyncpg, for several bot processes sharing one database.

Every operation runs on a connection of a pool, in a transaction of its own; the writes to
a campaign's counter row (pledges, check-ins, withdrawals) are committed several to a
transaction by storage/batching.py's group commit, since that row is locked until each
commit. The counts stay exact and the volunteers' numbers unique and gap-free whatever
writes at once: a pledge locks its volunteer's row, then bumps the counters, in one
transaction (the schema's function record_pledge, one round trip). Deliveries are claimed
with FOR UPDATE SKIP LOCKED; a broadcast is made once per key (its unique index), and its
recipients are added a chunk per transaction under the broadcast row's lock, each at most
once (a unique index), however many processes expand it.

Erasing (/forget, opting out, the campaign's end) deletes the rows in one transaction and
then VACUUMs the tables in the background. PostgreSQL cannot promise what the SQLite
backend does (no copy left in the files, NotWiped otherwise): until that VACUUM the dead row
versions stay in the table and index files, and even after it their bytes may linger in
free space until overwritten; the write-ahead log keeps them until its segments are
recycled (and any WAL archive, replica or backup keeps them as long as it lives).

A failing database (unreachable, refusing, out of disk, shutting down) or any server error
reaches callers as StorageError, whose message names the failure (class, SQLSTATE) and
never the data, nor the URL.

The package, by reason: store.py is the Storage contract (PostgresStorage), queries.py its
SQL, schema.py the migrations (migrations/NNNN_name.sql) and VACUUM, transactions.py how an
operation or a batch meets PostgreSQL's transactions and errors. (leader.py, the
scheduler's leadership, is separate.)
"""

from storage.postgres.store import PostgresStorage

__all__ = ["PostgresStorage"]

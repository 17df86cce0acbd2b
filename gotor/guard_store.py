"""Persistent guard state in SQLite (guard-spec A.5's content, our own format).

One table holds the sampled guards (:class:`~gotor.guard.GuardRecord`:
identity, nickname, sample order, dates, listed flag, confirmed order).
:meth:`SqliteGuardStore.save` replaces the whole set inside one
``BEGIN IMMEDIATE ... COMMIT`` transaction, so after a crash the file holds
either the previous state or the new one, never a mixture (SQLite's
rollback journal guarantees it).  The sample is small (guard-spec caps it at
60), so writing it whole is cheaper than tracking row-level changes.

The file lives in the client's data directory (``guards.sqlite``).  A file
written by a newer schema version, or one that is not an SQLite database, is
refused (a :class:`~gotor.errors.LocalError` naming it) rather than misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from gotor.errors import LocalError
from gotor.guard import GuardRecord

__all__ = ["GUARD_DB_NAME", "SCHEMA_VERSION", "SqliteGuardStore"]

GUARD_DB_NAME = "guards.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sampled_guards (
    rsa_id BLOB PRIMARY KEY CHECK (length(rsa_id) = 20),
    nickname TEXT NOT NULL,
    sample_idx INTEGER NOT NULL UNIQUE,
    added_on INTEGER NOT NULL,
    listed INTEGER NOT NULL,
    unlisted_since INTEGER,
    confirmed_on INTEGER,
    confirmed_idx INTEGER UNIQUE
);
"""
_COLUMNS = (
    "rsa_id, nickname, sample_idx, added_on, listed, unlisted_since, confirmed_on, confirmed_idx"
)


class SqliteGuardStore:
    """A :class:`~gotor.guard.GuardStore` in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each save is
        # exactly one transaction.
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:  # not a database, or one we cannot open
            self._db.close()
            raise LocalError(f"{self.path}: unusable guard state: {exc}") from None
        except LocalError:
            self._db.close()
            raise

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> SqliteGuardStore:
        return cls(Path(data_dir) / GUARD_DB_NAME)

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise LocalError(f"{self.path}: guard state schema {row[0]} is not supported")

    def load(self) -> list[GuardRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM sampled_guards ORDER BY sample_idx"
        ).fetchall()
        return [
            GuardRecord(
                rsa_id=bytes(r[0]),
                nickname=r[1],
                sample_idx=r[2],
                added_on=r[3],
                listed=bool(r[4]),
                unlisted_since=r[5],
                confirmed_on=r[6],
                confirmed_idx=r[7],
            )
            for r in rows
        ]

    def save(self, records: Sequence[GuardRecord]) -> None:
        """Replace the stored sample with ``records``, atomically.

        A file that cannot be written (read-only, a full disk, damaged) is a LocalError
        naming it; the file keeps its previous state and the next save starts afresh.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM sampled_guards")
                self._db.executemany(
                    f"INSERT INTO sampled_guards ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            r.rsa_id,
                            r.nickname,
                            r.sample_idx,
                            r.added_on,
                            int(r.listed),
                            r.unlisted_since,
                            r.confirmed_on,
                            r.confirmed_idx,
                        )
                        for r in records
                    ),
                )
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:  # a failed statement, or a failed COMMIT
                    self._db.execute("ROLLBACK")
        except sqlite3.IntegrityError:
            raise  # records that break the schema: a bug of ours, not the file's
        except sqlite3.Error as exc:
            raise LocalError(f"{self.path}: cannot save the guard state: {exc}") from None

    def close(self) -> None:
        self._db.close()

"""Locks over work on the whole store, held by one process (or thread) at a time, whichever
process it is: a `sbu serve`, a flow run it started, or a second serve on the same store.

Why not a row: a lock must be let go when its holder dies mid-way (a killed serve, a crashed run),
or the work it guards would stop until someone noticed. Both locks used here are let go by the
operating system or the database when the process or its connection goes, so nothing has to
expire:
- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a connection held for as long as
  the lock is; every process on every machine that reaches the database sees it.
- SQLite: `flock` on a file beside the database. SQLite serves one machine, and `flock` is per
  open file, so two threads of one process exclude each other as two processes do.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from tasks.store.db import Store

POLL_SECONDS = 0.1
# A store with no file (SQLite in memory) is one process's own: a lock in that process suffices.
_IN_PROCESS: dict[str, threading.Lock] = {}
_IN_PROCESS_GUARD = threading.Lock()


@contextmanager
def store_lock(store: Store, name: str, *, wait_seconds: float = 0.0) -> Iterator[bool]:
    """Hold the store's lock `name` for the block, waiting up to `wait_seconds` for it; yields
    whether it is held. The block runs either way, so the caller decides what to do without it
    (skip its round, say)."""
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        with _advisory_lock(store, name, wait_seconds) as held:
            yield held
        return
    database = store.engine.url.database if dialect == "sqlite" else None
    if database and database != ":memory:":
        with _file_lock(Path(f"{database}.{name}.lock"), wait_seconds) as held:
            yield held
        return
    with _IN_PROCESS_GUARD:
        lock = _IN_PROCESS.setdefault(f"{store.url} {name}", threading.Lock())
    held = lock.acquire(timeout=wait_seconds) if wait_seconds > 0 else lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()


def _advisory_key(store: str, name: str) -> int:
    """A stable signed 64-bit key (advisory locks are keyed by a bigint) for the lock `name` of
    the store `store` (its database and schema: advisory locks are the whole server's, and two
    stores may share a server)."""
    digest = hashlib.sha256(f"sbu-store-lock:{store}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _advisory_lock(store: Store, name: str, wait_seconds: float) -> Iterator[bool]:
    deadline = time.monotonic() + wait_seconds
    with store.engine.connect() as connection:
        # Named as the server names it, so every process agrees whatever URL it reached it by.
        where = connection.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
        key = _advisory_key(str(where), name)
        while True:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
            # The lock belongs to the session, not the transaction: end the transaction, so the
            # connection does not sit idle in one for as long as the lock is held.
            connection.commit()
            if held or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


@contextmanager
def _file_lock(path: Path, wait_seconds: float) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if held or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)

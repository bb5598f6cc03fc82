"""The launcher of Prefect's server (`deployments.prefect_server`): its one change to Prefect's
server holds on the pinned Prefect, and it refuses to start if an upgrade moved what it changes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration

from models.errors import SbuError
from tasks.prefect.hooks import install_sqlite_write_lock


@pytest.fixture
def restore_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hook changes a class of Prefect's in this process; put it back after each test.
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction",
                        AioSqliteConfiguration.begin_transaction)


def other_writer_is_refused(database: Path) -> bool:
    """Whether another connection, not waiting at all, is refused the write lock now."""
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
        return True
    else:
        other.execute("ROLLBACK")
        return False
    finally:
        other.close()


def write_lock_held_after_a_read(database: Path) -> bool:
    """Open a transaction the way Prefect's server does (not asking for `with_for_update`), read
    in it, and say whether it holds the write lock at that moment."""
    async def check() -> bool:
        config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{database}")
        engine = await config.engine()
        try:
            async with engine.begin() as connection:
                await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            session = await config.session(engine)
            async with session, config.begin_transaction(session):
                await session.execute(sa.text("SELECT count(*) FROM t"))
                return await asyncio.to_thread(other_writer_is_refused, database)
        finally:
            await engine.dispose()

    return asyncio.run(check())


@pytest.mark.usefixtures("restore_prefect")
def test_prefect_opens_its_transactions_deferred_without_the_hook(tmp_path: Path) -> None:
    # The failure the hook exists for: a read leaves the write lock free for another writer,
    # whose commit then makes this transaction's own write fail at once.
    assert not write_lock_held_after_a_read(tmp_path / "prefect.db")


@pytest.mark.usefixtures("restore_prefect")
def test_with_the_hook_every_transaction_takes_the_write_lock_when_it_begins(tmp_path: Path) -> None:
    install_sqlite_write_lock()
    install_sqlite_write_lock()  # idempotent: a second install does not wrap the first
    assert write_lock_held_after_a_read(tmp_path / "prefect.db")


@pytest.mark.usefixtures("restore_prefect")
def test_the_hook_refuses_to_install_if_prefect_moved_what_it_hooks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What a Prefect upgrade that reshaped `begin_transaction` would look like to the launcher.
    @asynccontextmanager
    async def reshaped(self: Any, session: Any, mode: str = "DEFERRED") -> AsyncIterator[None]:
        yield None

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", reshaped)
    with pytest.raises(SbuError, match="write-lock hook"):
        install_sqlite_write_lock()

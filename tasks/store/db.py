"""Engine, sessions and schema for the case store. SQLite under the data directory by default;
PostgreSQL (or any SQLAlchemy URL) through SBU_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

from models.errors import SbuError, StoreUnavailable

# The newest migration; compared on every start so the common case costs one query, not Alembic.
HEAD_REVISION = "0005_anchor_rows"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI read while a flow writes; foreign keys are off in SQLite unless asked for.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def ensure_schema(engine: Engine) -> None:
    """Bring the store to the newest migration. Cheap when it is already there."""
    try:
        revision = current_revision(engine)
    except OperationalError as error:
        raise SbuError(f"cannot open the case store: {error.orig.__class__.__name__}") from None
    if revision == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _unavailable(error: DBAPIError) -> bool:
    """Whether `error` says the database is out of reach (not, say, a SQLite lock held too long,
    which SQLAlchemy also reports as an OperationalError and which retries on its own)."""
    if error.connection_invalidated:
        return True
    if not type(error.orig).__module__.startswith("psycopg"):
        return False
    # No SQLSTATE: the connection failed or broke. Class 08 is a connection exception, 57P the
    # server shutting down or starting (a deadlock, 40P01, is not this and is raised as it is).
    state = getattr(error.orig, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


class Store:
    """The case store: an engine and a session factory. Callers own each transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @cached_property
    def _sessions(self) -> sessionmaker[Session]:
        # The ORM is imported on first use only: the read-only commands never need it (see
        # `tasks.store.queries`), and importing it is a fifth of what `sbu status` would cost.
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> Store:
        ensure_schema(self.engine)
        return self

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed if the block succeeds, rolled back if it raises.

        On SQLite the unit takes the database's write lock when it begins (`BEGIN IMMEDIATE`),
        the counterpart of PostgreSQL's `SELECT ... FOR UPDATE` of the case row, which SQLite
        ignores. Left to the driver, the transaction only began at its first write: two changes to
        one case both read it undecided, both decided, and the second failed on a unique constraint
        (or, on a table without one, wrote the step twice). Taking the lock first makes the second
        wait its turn (busy_timeout) and then read the first one's result, so it is told "already
        recorded" as it would be a minute later. Readers are not held up: WAL lets them read.

        A database that cannot be reached or drops the connection (PostgreSQL restarting, say) is
        reported as `StoreUnavailable`, one line a person can act on: run it again."""
        try:
            with self._sessions() as session, session.begin():
                if self.engine.dialect.name == "sqlite":
                    session.connection().exec_driver_sql("BEGIN IMMEDIATE")
                yield session
        except (OperationalError, InterfaceError) as error:
            if not _unavailable(error):
                raise
            raise StoreUnavailable(
                f"the case store could not be reached or lost the connection "
                f"({error.orig.__class__.__name__ if error.orig is not None else 'no answer'}); "
                "the change was not made, or not confirmed: run the same command again (a change "
                "already made is recognised and not made twice)") from None

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

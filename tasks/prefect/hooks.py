"""Every place we reach into Prefect's internals, in one module.

Each hook depends on something Prefect does not promise to keep: a private attribute, a module's
global, a REST path, a key layout, a class method's signature. That is why the Prefect version is
pinned in `pyproject.toml`. Upgrading Prefect means reading this module and
docs/prefect-upgrade.md, and running tests/tasks/prefect/, which fail loudly when an upgrade moves
what a hook uses.
"""

from __future__ import annotations

import inspect
import multiprocessing
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from models.errors import SbuError

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction


# -- settings read again ---------------------------------------------------------------------------

def refresh_settings() -> None:
    """Make Prefect in this process read its settings from the environment again (it reads them
    once, at import, before we know the API URL)."""
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


# -- the client's headers and the resume endpoint --------------------------------------------------

def client_headers(client: SyncPrefectClient) -> Any:
    """The headers Prefect's client sends (its auth string, CSRF token, API version), for a request
    of ours to the same server: Prefect's `httpx` client is its private `_client`."""
    return client._client.headers


def resume_path(run_id: UUID) -> str:
    """The REST path Prefect's client posts a resume to, relative to the API URL."""
    return f"flow_runs/{run_id}/resume"


# -- run input keys --------------------------------------------------------------------------------

# Prefect stores a suspended run's input under keys made from the Paused state's name and the pause
# key: "suspended-<pause key>-response" for the answer, "-schema" and "-description" beside it.
SUSPENDED_INPUT_PREFIX = "suspended-"
RESPONSE_SUFFIX = "-response"


def input_key_prefix(wait: str) -> str:
    """The prefix of the keys of every input Prefect stores for the waits whose keys start `wait`."""
    return f"{SUSPENDED_INPUT_PREFIX}{wait}"


def pause_key_of_input(key: str) -> tuple[str, bool]:
    """The pause key an input's key belongs to, and whether the input is the answer (not the form's
    schema or description)."""
    answer = key.endswith(RESPONSE_SUFFIX)
    return key.removeprefix(SUSPENDED_INPUT_PREFIX).removesuffix(RESPONSE_SUFFIX), answer


# -- the SQLite write lock taken up front (Prefect's server) ---------------------------------------

_MARK = "_sbu_write_lock_up_front"


def install_sqlite_write_lock() -> None:
    """Make every transaction of Prefect's server on SQLite begin IMMEDIATE (the reason is in
    deployments/prefect_server.py). Idempotent; raises SbuError if Prefect no longer chooses its
    BEGIN where we hook."""
    from prefect.server.database import configurations

    config = getattr(configurations, "AioSqliteConfiguration", None)
    original = getattr(config, "begin_transaction", None)
    if config is None or original is None:
        raise SbuError("Prefect's SQLite configuration has moved: the write-lock hook cannot be "
                       "installed (see tasks/prefect/hooks.py)")
    if getattr(original, _MARK, False):
        return
    parameters = list(inspect.signature(original).parameters)
    if parameters != ["self", "session", "with_for_update"] or \
            not hasattr(configurations, "SQLITE_BEGIN_MODE") or \
            not hasattr(config, "begin_sqlite_stmt"):
        raise SbuError("Prefect's SQLite transactions have changed shape: the write-lock hook "
                       "cannot be installed (see tasks/prefect/hooks.py)")

    @asynccontextmanager
    async def begin_transaction(self: Any, session: AsyncSession, with_for_update: bool = False,
                                ) -> AsyncIterator[AsyncSessionTransaction]:
        opened: AbstractAsyncContextManager[AsyncSessionTransaction] = original(
            self, session, with_for_update=True)
        async with opened as transaction:
            yield transaction

    setattr(begin_transaction, _MARK, True)
    config.begin_transaction = begin_transaction


# -- how the flow engine starts a run's process ----------------------------------------------------

def replace_flow_engine_multiprocessing(stand_in: object) -> None:
    """Give `prefect.flow_engine`, and only it, `stand_in` for its `multiprocessing` module: the
    engine's `run_flow_in_subprocess` asks that global for its "spawn" context."""
    import prefect.flow_engine as engine

    engine.__dict__["multiprocessing"] = stand_in


def restore_flow_engine_multiprocessing() -> None:
    """Give `prefect.flow_engine` the real `multiprocessing` back (for tests)."""
    import prefect.flow_engine as engine

    engine.__dict__["multiprocessing"] = multiprocessing

"""Every place we reach into Prefect's internals, in one module.

Each hook depends on something Prefect does not promise to keep: a private attribute, a module's
global, a REST path, a key layout, a class method's signature. That is why the Prefect version is
pinned in `pyproject.toml`. Each hook has a check (`CHECKS`) that what it uses is still there and
still has the shape it expects; `sbu serve` runs them all before it starts (`check_all`), and
tests/tasks/prefect/test_hooks.py runs each, so a Prefect upgrade that moves one fails loudly, by
name, instead of quietly slowing or breaking what the hook was for. docs/prefect-upgrade.md says
how to upgrade.
"""

from __future__ import annotations

import inspect
import multiprocessing
import re
from collections.abc import AsyncIterator, Callable
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


def check_refresh_settings() -> None:
    from prefect import context

    found = getattr(context, "refresh_global_settings_context", None)
    if not callable(found) or _required_parameters(found):
        raise _moved("refresh_settings", "prefect.context.refresh_global_settings_context() is gone "
                     "or now takes arguments")


# -- the client's headers and the resume endpoint --------------------------------------------------

def client_headers(client: SyncPrefectClient) -> Any:
    """The headers Prefect's client sends (its auth string, CSRF token, API version), for a request
    of ours to the same server: Prefect's `httpx` client is its private `_client`."""
    return client._client.headers


# Where Prefect's client, and its UI, post a resume: we post there ourselves (`resume_path`), and
# the gateway stamps who submitted a form on its way there (`RESUME_REQUEST`).
RESUME_ROUTE = "flow_runs/{id}/resume"
RESUME_REQUEST = re.compile("^/api/" + RESUME_ROUTE.replace("{id}", "([0-9a-fA-F-]{36})") + "$")


def resume_path(run_id: UUID) -> str:
    """The REST path Prefect's client posts a resume to, relative to the API URL."""
    return RESUME_ROUTE.format(id=run_id)


def check_client_headers() -> None:
    """Prefect's sync client keeps an `httpx.Client` in `_client`, whose headers carry the API
    version and, when one is set, the auth string. No request is made."""
    import httpx
    from prefect.client.orchestration import SyncPrefectClient

    client = SyncPrefectClient("http://127.0.0.1:9/api", auth_string="user:secret")
    inner = getattr(client, "_client", None)
    if not isinstance(inner, httpx.Client):
        raise _moved("client_headers", "SyncPrefectClient no longer keeps its httpx client in `_client`")
    headers = client_headers(client)
    if not headers.get("authorization") or not headers.get("x-prefect-api-version"):
        raise _moved("client_headers", "the headers of SyncPrefectClient's `_client` no longer carry "
                     "the auth string and the API version")


def check_resume_path() -> None:
    """Prefect's own client posts resumes to the path we post to."""
    from prefect.client.orchestration import SyncPrefectClient

    if f'"/{RESUME_ROUTE}"' not in inspect.getsource(SyncPrefectClient.resume_flow_run):
        raise _moved("resume_path", f"SyncPrefectClient.resume_flow_run no longer posts to /{RESUME_ROUTE}")


# -- run input keys --------------------------------------------------------------------------------

# Prefect stores a suspended run's input under keys made from the Paused state's name and the pause
# key: "suspended-<pause key>-response" for the answer, "-schema" and "-description" beside it.
SUSPENDED_INPUT_PREFIX = "suspended-"
RESPONSE_SUFFIX = "-response"


def input_key_prefix(wait: str) -> str:
    """The prefix of the keys of every input Prefect stores for the waits whose keys start `wait`."""
    return f"{SUSPENDED_INPUT_PREFIX}{wait}"


def schema_key(pause_key: str) -> str:
    """The key of the schema Prefect stores for the form a run waits on with `pause_key`."""
    return f"{SUSPENDED_INPUT_PREFIX}{pause_key}-schema"


def pause_key_of_input(key: str) -> tuple[str, bool]:
    """The pause key an input's key belongs to, and whether the input is the answer (not the form's
    schema or description)."""
    answer = key.endswith(RESPONSE_SUFFIX)
    return key.removeprefix(SUSPENDED_INPUT_PREFIX).removesuffix(RESPONSE_SUFFIX), answer


def check_input_keys() -> None:
    """Prefect still keys a suspended run's inputs as we read them."""
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.states import Suspended

    keys = keyset_from_paused_state(Suspended(pause_key="wait-1"))
    expected = {"response": "suspended-wait-1-response", "schema": "suspended-wait-1-schema",
                "description": "suspended-wait-1-description"}
    if dict(keys) != expected:
        raise _moved("input_key_prefix", f"a suspended run's input keys are now {sorted(keys.values())}")


# -- the SQLite write lock taken up front (Prefect's server) ---------------------------------------

_MARK = "_sbu_write_lock_up_front"


def check_sqlite_write_lock() -> None:
    """Prefect's server still chooses every SQLite transaction's BEGIN in
    `AioSqliteConfiguration.begin_transaction(self, session, with_for_update)`."""
    from prefect.server.database import configurations

    config = getattr(configurations, "AioSqliteConfiguration", None)
    original = getattr(config, "begin_transaction", None)
    if config is None or original is None:
        raise _moved("install_sqlite_write_lock", "Prefect's SQLite configuration has moved: the "
                     "write-lock hook cannot be installed")
    if getattr(original, _MARK, False):
        return
    parameters = list(inspect.signature(original).parameters)
    if parameters != ["self", "session", "with_for_update"] or \
            not hasattr(configurations, "SQLITE_BEGIN_MODE") or \
            not hasattr(config, "begin_sqlite_stmt"):
        raise _moved("install_sqlite_write_lock", "Prefect's SQLite transactions have changed "
                     "shape: the write-lock hook cannot be installed")


def install_sqlite_write_lock() -> None:
    """Make every transaction of Prefect's server on SQLite begin IMMEDIATE (the reason is in
    deployments/prefect_server.py). Idempotent; raises SbuError if Prefect no longer chooses its
    BEGIN where we hook."""
    check_sqlite_write_lock()
    from prefect.server.database import configurations

    config: Any = configurations.AioSqliteConfiguration
    original = config.begin_transaction
    if getattr(original, _MARK, False):
        return

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


def check_flow_engine_multiprocessing() -> None:
    """The runner still starts every served flow it holds with
    `prefect.flow_engine.run_flow_in_subprocess`, which still asks its module's `multiprocessing`
    global for the "spawn" context."""
    import prefect.flow_engine as engine

    start = getattr(engine, "run_flow_in_subprocess", None)
    if start is None or "multiprocessing" not in engine.__dict__:
        raise _moved("replace_flow_engine_multiprocessing", "prefect.flow_engine no longer has "
                     "run_flow_in_subprocess and a `multiprocessing` global")
    import importlib

    try:
        starter: object = importlib.import_module("prefect.runner._starter_direct")
    except ImportError:
        starter = None
    if getattr(starter, "run_flow_in_subprocess", None) is not start:
        raise _moved("replace_flow_engine_multiprocessing", "the runner no longer starts served "
                     "flows with prefect.flow_engine.run_flow_in_subprocess")
    if 'multiprocessing.get_context("spawn")' not in inspect.getsource(engine.run_flow_in_subprocess):
        raise _moved("replace_flow_engine_multiprocessing", "run_flow_in_subprocess no longer takes "
                     'its process from multiprocessing.get_context("spawn")')


# -- all of them -----------------------------------------------------------------------------------

# The hooks used where flows are served and Prefect is told (`sbu serve`, `sbu`, the flows), and
# the one used inside Prefect's server, which our launcher checks as it installs it (importing
# Prefect's server costs a second and more, which a client need not pay).
CLIENT_CHECKS: dict[str, Callable[[], None]] = {
    "refresh_settings": check_refresh_settings,
    "client_headers": check_client_headers,
    "resume_path": check_resume_path,
    "input_key_prefix": check_input_keys,
    "replace_flow_engine_multiprocessing": check_flow_engine_multiprocessing,
}
SERVER_CHECKS: dict[str, Callable[[], None]] = {
    "install_sqlite_write_lock": check_sqlite_write_lock,
}
CHECKS = CLIENT_CHECKS | SERVER_CHECKS


def check_all(checks: dict[str, Callable[[], None]] = CHECKS) -> None:
    """Run the hooks' checks; raise one SbuError naming every hook whose Prefect internal moved."""
    problems: list[str] = []
    for check in checks.values():
        try:
            check()
        except SbuError as error:
            problems.append(str(error))
    if problems:
        raise SbuError("this Prefect is not the one our hooks were written for "
                       "(see docs/prefect-upgrade.md):\n  " + "\n  ".join(problems))


def _moved(hook: str, what: str) -> SbuError:
    return SbuError(f"tasks/prefect/hooks.py::{hook}: {what}")


def _required_parameters(function: Callable[..., object]) -> list[str]:
    return [name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.default is inspect.Parameter.empty
            and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]

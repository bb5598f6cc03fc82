"""Every hook into Prefect's internals (`tasks.prefect.hooks`): each still does what it is for on
the pinned Prefect, and each one's check fails, naming the hook, when Prefect moves what it uses.
A Prefect upgrade that breaks one of these tests is the signal to read docs/prefect-upgrade.md."""

from __future__ import annotations

import ast
import asyncio
import multiprocessing
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import State, StateType
from prefect.server.database.configurations import AioSqliteConfiguration
from prefect.settings import PREFECT_API_URL
from prefect.states import Paused, Suspended

from models.errors import SbuError
from tasks.prefect import hooks
from tasks.prefect.hooks import install_sqlite_write_lock

REPO_ROOT = Path(__file__).resolve().parents[3]


def moved(hook: str) -> str:
    """What a check's refusal says first: the hook, by name."""
    return re.escape(f"tasks/prefect/hooks.py::{hook}:")


# -- every hook, its check, and nowhere else -------------------------------------------------------

@pytest.mark.parametrize("hook", sorted(hooks.CHECKS))
def test_each_hook_is_checked_and_holds_on_the_pinned_prefect(hook: str) -> None:
    assert callable(getattr(hooks, hook)), f"CHECKS names {hook}, which hooks.py does not define"
    hooks.CHECKS[hook]()


def test_check_all_names_every_hook_that_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    def moved() -> None:
        raise SbuError("tasks/prefect/hooks.py::resume_path: moved")

    monkeypatch.setitem(hooks.CLIENT_CHECKS, "resume_path", moved)
    with pytest.raises(SbuError, match=r"prefect-upgrade\.md") as raised:
        hooks.check_all(hooks.CLIENT_CHECKS)
    assert "resume_path: moved" in str(raised.value)
    assert str(raised.value).count("tasks/prefect/hooks.py::") == 1


# What reaching into Prefect's internals looks like in our source: a private attribute of one of
# its objects, a module's globals replaced, its server's modules, its settings reloaded, the keys
# and REST paths it keeps to itself.
INTERNALS = ("._client", "__dict__[", "prefect.server", "refresh_global_settings_context",
             '"suspended-', "/resume", "from prefect.flow_engine", "prefect.flow_engine as",
             "AioSqliteConfiguration")


def hook_like_lines(source: str) -> list[str]:
    """The lines of `source`, outside docstrings and comments, that reach into Prefect."""
    docstrings = {number for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str)
                  for number in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        code = line.split("#", 1)[0]
        if number not in docstrings and any(internal in code for internal in INTERNALS):
            found.append(f"{number}: {line.strip()}")
    return found


def test_no_module_but_hooks_reaches_into_prefect() -> None:
    found = []
    for layer in ("models", "tasks", "flows", "deployments"):
        for path in sorted((REPO_ROOT / layer).rglob("*.py")):
            if path == REPO_ROOT / "tasks" / "prefect" / "hooks.py":
                continue
            found += [f"{path.relative_to(REPO_ROOT)}:{line}" for line in hook_like_lines(path.read_text())]
    assert found == [], "\n".join(found)


def test_the_search_for_hooks_would_find_one() -> None:
    assert hook_like_lines("headers = client._client.headers\n") == ["1: headers = client._client.headers"]
    documented = '"""A docstring.\n\nclient._client is private"""\nx = 1  # engine.__dict__[...]\n'
    assert hook_like_lines(documented) == []


# -- the settings read again -----------------------------------------------------------------------

def test_refresh_settings_makes_prefect_read_the_environment_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    try:
        hooks.refresh_settings()
        assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api"
    finally:
        monkeypatch.undo()
        hooks.refresh_settings()


def test_the_settings_check_notices_the_refresh_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.context

    monkeypatch.delattr(prefect.context, "refresh_global_settings_context")
    with pytest.raises(SbuError, match=moved("refresh_settings")):
        hooks.check_refresh_settings()


# -- the client's headers and the resume path ------------------------------------------------------

@flow(name="hook-probe", persist_result=False)
def hook_probe() -> None:
    """Never run: a flow for the runs the tests create."""


@pytest.fixture
def client(prefect_pointed: str) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as opened:
        yield opened


@pytest.mark.prefect
def test_a_resume_posted_with_the_clients_headers_to_the_resume_path_resumes(
        client: SyncPrefectClient) -> None:
    # What `resume.resume_run` does before it falls back on Prefect's client; without this test a
    # moved path or refused headers would only cost 2 s a resume, silently.
    run = client.create_flow_run(hook_probe)
    # Paused, not Suspended: resuming a suspended run reschedules it, which needs a deployment.
    client.set_flow_run_state(run.id, Paused(pause_key="wait-1"), force=True)
    assert client.read_flow_run(run.id).state.type is StateType.PAUSED  # type: ignore[union-attr]
    with httpx.Client(base_url=client.api_url, headers=hooks.client_headers(client)) as http:
        answer = http.post(hooks.resume_path(run.id), json={"run_input": {}})
    assert answer.is_success, answer.status_code
    assert answer.json()["status"] == "ACCEPT", answer.json()
    assert client.read_flow_run(run.id).state.type is not StateType.PAUSED  # type: ignore[union-attr]


@pytest.mark.prefect
def test_a_resume_prefect_refuses_is_told_as_refused(client: SyncPrefectClient) -> None:
    # Prefect answers a refused resume with a success status and REJECT in its body: a run
    # waiting on a form whose schema was never stored, as one stopped between the two is.
    from prefect.input.run_input import keyset_from_paused_state

    from tasks.prefect.resume import resume_run

    run = client.create_flow_run(hook_probe)
    paused: State[None] = Paused(pause_key="wait-2")
    keyset = keyset_from_paused_state(paused)
    paused.state_details.run_input_keyset = {str(name): key for name, key in keyset.items()}
    client.set_flow_run_state(run.id, paused, force=True)
    assert resume_run(client, run.id, {"recorded": True}) is False
    assert client.read_flow_run(run.id).state.type is StateType.PAUSED  # type: ignore[union-attr]
    client.set_flow_run_state(run.id, Paused(pause_key="wait-3"), force=True)
    assert resume_run(client, run.id, {}) is True


def test_the_headers_check_notices_the_private_client_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SyncPrefectClient.__init__

    def renamed(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.__dict__["_http"] = self.__dict__.pop("_client")

    monkeypatch.setattr(SyncPrefectClient, "__init__", renamed)
    with pytest.raises(SbuError, match=moved("client_headers")):
        hooks.check_client_headers()


def test_the_resume_path_check_notices_the_path_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    def resume_flow_run(self: SyncPrefectClient, flow_run_id: UUID, run_input: Any = None) -> Any:
        return self.request("POST", "/flow_runs/{id}/resume-v2", path_params={"id": flow_run_id})  # type: ignore[arg-type]

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", resume_flow_run)
    with pytest.raises(SbuError, match=moved("resume_path")):
        hooks.check_resume_path()


# -- run input keys --------------------------------------------------------------------------------

def test_an_input_key_is_read_back_to_its_pause_key() -> None:
    from prefect.input.run_input import keyset_from_paused_state

    keys = keyset_from_paused_state(Suspended(pause_key="rr-decision-1"))
    assert all(key.startswith(hooks.input_key_prefix("rr-decision")) for key in keys.values())
    assert hooks.pause_key_of_input(keys["response"]) == ("rr-decision-1", True)
    assert hooks.pause_key_of_input(keys["schema"])[1] is False


def test_the_input_key_check_notices_a_new_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.input.run_input as run_input

    def paused_keys(state: Any) -> Any:
        return run_input.keyset_from_base_key(f"paused-{state.state_details.pause_key}")

    monkeypatch.setattr(run_input, "keyset_from_paused_state", paused_keys)
    with pytest.raises(SbuError, match=moved("input_key_prefix")):
        hooks.check_input_keys()


# -- how the flow engine starts a run's process ----------------------------------------------------

class Asked(Exception):
    """Raised by the stand-in's process, so no process is started."""


class StandIn:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def get_context(self, method: str | None = None) -> Any:
        self.asked.append(method)
        return self

    def Process(self, **kwargs: Any) -> Any:  # as in multiprocessing
        raise Asked

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


@pytest.fixture
def engine_restored() -> Iterator[None]:
    yield
    hooks.restore_flow_engine_multiprocessing()


@pytest.mark.usefixtures("engine_restored")
def test_the_engine_takes_a_runs_process_from_the_stand_in() -> None:
    from prefect.flow_engine import run_flow_in_subprocess

    stand_in = StandIn()
    hooks.replace_flow_engine_multiprocessing(stand_in)
    hooks.check_flow_engine_multiprocessing()  # the check holds with the stand-in in place
    with pytest.raises(Asked):
        run_flow_in_subprocess(hook_probe)
    assert stand_in.asked == ["spawn"]
    hooks.restore_flow_engine_multiprocessing()
    import prefect.flow_engine

    assert prefect.flow_engine.__dict__["multiprocessing"] is multiprocessing


@pytest.mark.parametrize("change", ["source", "runner"])
def test_the_engine_check_notices_a_new_start(monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    import prefect.flow_engine
    import prefect.runner._starter_direct as starter

    def run_flow_in_subprocess(flow: Any) -> Any:
        return multiprocessing.get_context("forkserver").Process(target=flow)

    if change == "source":
        monkeypatch.setattr(prefect.flow_engine, "run_flow_in_subprocess", run_flow_in_subprocess)
        monkeypatch.setattr(starter, "run_flow_in_subprocess", run_flow_in_subprocess)
    else:
        monkeypatch.setattr(starter, "run_flow_in_subprocess", run_flow_in_subprocess)
    with pytest.raises(SbuError, match=moved("replace_flow_engine_multiprocessing")):
        hooks.check_flow_engine_multiprocessing()


# -- the SQLite write lock taken up front ----------------------------------------------------------

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
    with pytest.raises(SbuError, match=moved("install_sqlite_write_lock")):
        install_sqlite_write_lock()

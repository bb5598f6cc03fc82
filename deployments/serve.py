"""`sbu serve`: the whole system in one foreground process.

Starts a local Prefect server (SQLite under the data directory, telemetry off) unless
PREFECT_API_URL points at a running one, then serves every deployment from this process with a
short poll, so a recorded decision moves its case within seconds. Ctrl-C stops both; starting
again carries on where it stopped, because the store and Prefect's database are both on disk and
the reconciliation sweep runs first.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from models.errors import SbuError
from models.processes import build_registry
from models.registry import Registry
from tasks.prefect.connection import (
    LARGE_PAGE,
    api_url_marker,
    prefect_environment,
    prefect_rereads_environment,
    prefect_server_environment,
    server_answers,
)
from tasks.prefect.runs import RECONCILE_DEPLOYMENT

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.runner import Runner

    from models.settings import Settings

log = logging.getLogger("sbu.serve")

SERVER_START_TIMEOUT = 90.0
# How many flow runs may execute at once, each a Python process of its own: the case runs (people's
# work: a case's process started, resumed by a decision or a form) and, in a runner of their own,
# the background runs (timers, sweeps, mail delivery, digests, reports). Background runs can never
# take a case run's slot, so a resumed case never waits behind them; and the background is held to
# two at a time, so a backlog of it leaves the CPU mostly to people's runs too.
CASE_RUN_LIMIT = 8
BACKGROUND_RUN_LIMIT = 2


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def local_prefect_server(settings: Settings, *, port: int,
                         progress: Callable[[str], None] | None = None) -> Iterator[str]:
    """Run Prefect's server on loopback with its database under the data directory, through our
    launcher (`deployments.prefect_server`): its SQLite transactions take the write lock up front,
    and it ends when this process ends, however this process ends. `progress` is told how its
    start-up goes (it takes seconds to tens of seconds)."""
    if not port_is_free(port):
        raise SbuError(f"port {port} is in use: stop what holds it or choose another with --port")
    home = (settings.data_dir / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **prefect_environment(settings), **prefect_server_environment(settings),
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
           # Interval schedules need only the next few runs made ahead, not Prefect's default 100.
           "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "1",
           "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "3",
           # A sweep reads every waiting case's run in a page or two, not fifty.
           "PREFECT_SERVER_API_DEFAULT_LIMIT": str(LARGE_PAGE),
           # A request refused because SQLite was busy is answered 503 and by default not logged;
           # it should not happen on this server (deployments/prefect_server.py), so say if it does.
           "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true"}
    env.pop("PREFECT_API_URL", None)
    log_file = (home / "server.log").open("ab")
    command = [sys.executable, "-m", "deployments.prefect_server", "--parent-pid", str(os.getpid()),
               "--host", "127.0.0.1", "--port", str(port)]
    # A session of its own, so Ctrl-C in a terminal stops it only through the orderly stop below,
    # after the runner; its lifeline ends it if this process dies without one.
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        started = time.monotonic()
        shown = started
        while not server_answers(url):
            if process.poll() is not None:
                raise SbuError(f"the Prefect server stopped on start; see {home / 'server.log'}")
            if time.monotonic() - started > SERVER_START_TIMEOUT:
                raise SbuError(f"the Prefect server did not answer within {SERVER_START_TIMEOUT:.0f} s")
            if progress is not None and time.monotonic() - shown >= 5.0:
                shown = time.monotonic()
                progress(f"the Prefect server is still starting ({shown - started:.0f} s)")
            time.sleep(0.3)
        if progress is not None:
            progress(f"the Prefect server answers on port {port} after {time.monotonic() - started:.0f} s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


@dataclass(frozen=True)
class Served:
    """One deployment `sbu serve` offers: a flow, its name, whether it is background work (a
    system flow, not a case's process), and its schedule if it has one: an interval (the sweeps)
    or a cron read in `timezone` (the digests and reports)."""

    flow: Flow[..., Any]
    name: str
    tags: tuple[str, ...]
    every: timedelta | None = None
    cron: str | None = None
    timezone: str | None = None
    background: bool = False

    def schedule(self) -> dict[str, Any]:
        """The schedule as `Runner.add_flow` takes it: at most one of `interval` and `schedule`."""
        if self.cron is not None:
            from prefect.schedules import Cron

            return {"schedule": Cron(self.cron, timezone=self.timezone)}
        return {"interval": self.every}


def resolve_flow(path: str) -> Flow[..., Any]:
    """The flow named "package.module:function" in the registry."""
    from prefect import Flow

    module_name, _, attribute = path.partition(":")
    found = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(found, Flow):
        raise SbuError(f"{path} is not a Prefect flow")
    return found


def served_flows(registry: Registry) -> list[Served]:
    """Every deployment `sbu serve` offers: one per process of the registry (its flow's name is
    the process id) and one per system flow, with its interval or its cron."""
    served: list[Served] = []
    for process in registry.processes:
        flow = resolve_flow(process.flow)
        if flow.name != process.id:
            raise SbuError(f"the flow of process {process.id} is named {flow.name}; they must match")
        served.append(Served(flow, process.id, process.tags))
    for system in registry.system_flows:
        every = timedelta(seconds=system.every_seconds) if system.every_seconds else None
        served.append(Served(resolve_flow(system.flow), system.name, system.tags, every, system.cron,
                             system.timezone, background=True))
    # Every flow reads its settings at its own process's edge, so none is passed here.
    return served


def serve_forever(settings: Settings, *, port: int | None = None) -> None:
    """Serve every deployment until interrupted; start a local server first if none is set."""
    from tasks.secret_sources import refuse_secrets_in_files

    refuse_secrets_in_files(settings)
    for name, value in prefect_environment(settings).items():
        os.environ.setdefault(name, value)
    from tasks.store.db import Store

    _say("checking the case store")
    Store(settings.sqlalchemy_url).migrate().dispose()  # a bad store fails here, before Prefect
    external = os.environ.get("PREFECT_API_URL")
    if external:
        if not server_answers(external):
            raise SbuError("PREFECT_API_URL is set but no Prefect server answers there")
        _serve(settings, external)
        return
    port = port or settings.prefect_port
    _say(f"starting the Prefect server on port {port} (its log: "
         f"{settings.data_dir / 'prefect' / 'server.log'})")
    with local_prefect_server(settings, port=port, progress=_say) as url:
        _serve(settings, url)


def _say(message: str) -> None:
    """Start-up progress, one line a stage: serve takes seconds to tens of seconds to start."""
    print(f"sbu serve: {message}", flush=True)


class CatchUp(threading.Thread):
    """Every `catch_up_seconds`, tells Prefect what the store committed while Prefect could not be
    told (`tasks.prefect.reconcile.tell_untold`): a case referred while the server was busy gets its
    run within seconds, not at the next full reconciliation sweep."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="sbu-catch-up", daemon=True)
        self.settings = settings
        self.stopping = threading.Event()

    def run(self) -> None:
        from tasks.prefect.connection import prefect_client
        from tasks.prefect.reconcile import tell_untold
        from tasks.service import CaseService
        from tasks.store.db import Store

        service = CaseService(store=Store(self.settings.sqlalchemy_url), settings=self.settings,
                              clock=self.settings.clock())
        while not self.stopping.wait(self.settings.catch_up_seconds):
            try:
                with prefect_client(self.settings) as client:
                    if client is not None and (told := tell_untold(client, service)):
                        log.info("catch-up: told Prefect of %d runs or timers it had missed", told)
            except Exception as error:  # noqa: BLE001 - the next round, or reconcile, tries again
                log.warning("catch-up: Prefect could not be told (%s); trying again",
                            error.__class__.__name__)
        service.store.dispose()


async def _run_together(runners: list[Runner]) -> None:
    """Run `runners` until they stop; SIGTERM stops every one of them. Each runner's `start` puts
    its own SIGTERM handler in place of the one before, which would stop only the last."""
    started = [asyncio.create_task(runner.start()) for runner in runners]
    await asyncio.sleep(0)  # each start has set its handler by its first await

    def stop_all(*_signal: object) -> None:
        leaving: SystemExit | None = None
        for runner in runners:
            try:
                runner.handle_sigterm()
            except SystemExit as exit_:  # a runner not started yet: the process leaves
                leaving = exit_
        if leaving is not None:
            raise leaving

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_all)
    await asyncio.gather(*started)


def _serve(settings: Settings, url: str) -> None:
    os.environ["PREFECT_API_URL"] = url
    prefect_rereads_environment()  # this process imported Prefect before the URL was known
    from prefect.client.orchestration import get_client
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    from deployments import warm_start
    from tasks.prefect import hooks

    started = datetime.now(UTC)
    # A Prefect upgraded under us refuses here, naming the hook, rather than serving slowly or wrongly.
    hooks.check_all(hooks.CLIENT_CHECKS)
    _say("loading the flows and starting the warm start")
    registry = build_registry(settings.process_modules)
    if not warm_start.install(warm_start.preload_for(registry)):
        log.warning("this platform has no forkserver: each flow run starts a fresh interpreter")
    # People first: the case runs and the background runs in runners of their own, each with its
    # own limit, both polling this server from this process.
    cases = Runner(name="sbu-cases", limit=CASE_RUN_LIMIT, query_seconds=settings.runner_poll_seconds,
                   pause_on_shutdown=False)
    background = Runner(name="sbu-background", limit=BACKGROUND_RUN_LIMIT,
                        query_seconds=settings.runner_poll_seconds, pause_on_shutdown=False)
    served = served_flows(registry)
    _say(f"registering {len(served)} deployments")
    for item in served:
        # `add_flow`, unlike `add_deployment`, keeps the flow object in the runner, which then
        # starts each run from that object in a child process (from the warm forkserver) rather
        # than running `python -m prefect.engine` to import everything again.
        (background if item.background else cases).add_flow(
            item.flow, name=item.name, tags=list(item.tags), **item.schedule())
    marker = api_url_marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(url)
    dashboard = url.removesuffix("/api")
    print(f"sbu serve: Prefect dashboard at {dashboard}; serving {len(served)} deployments "
          f"(poll every {settings.runner_poll_seconds:g} s). Ctrl-C to stop.", flush=True)
    with get_client(sync_client=True) as client:
        # Catch up first: anything committed while nothing was serving is picked up now.
        client.create_flow_run_from_deployment(
            client.read_deployment_by_name(RECONCILE_DEPLOYMENT).id, name="reconcile (on start)",
            parameters={"serve_started": started.isoformat()})
    catch_up = CatchUp(settings)
    catch_up.start()
    try:
        asyncio.run(_run_together([cases, background]))
    except (KeyboardInterrupt, TerminationSignal):
        pass
    finally:
        catch_up.stopping.set()
        if marker.exists() and marker.read_text() == url:
            marker.unlink()
        print("sbu serve: stopped", flush=True)

"""The system under test, one class per way of running it.

- `ServeOnSqlite`: `sbu serve` with its own Prefect server on SQLite and the case store on SQLite,
  through `deployments.local.LocalSystem` (as the demo and the end-to-end tests run it).
- `PostgresWorkers`: the production set-up, the case store and Prefect's database on PostgreSQL
  with two Prefect workers, started with `sbu deploy` and `sbu worker`. `unavailable()` says why
  it cannot run on a build without those commands (or a machine without PostgreSQL); the
  benchmark reports that row as not available rather than measuring something else.

Each gives the benchmark the same things: its settings (the store and the case clock), the `sbu`
command's environment, a Prefect client, and the process ids whose trees are the system (for
CPU and memory).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deployments.local import SBU, LocalSystem, free_port
from models.settings import Settings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


class System(Protocol):
    label: str

    @property
    def settings(self) -> Settings: ...

    @property
    def env(self) -> dict[str, str]: ...

    def start(self, *, case_start: datetime | None = None) -> float:
        """Start it (on a new case clock starting at `case_start`, if given; otherwise on the clock
        it had); the seconds until its deployments were registered."""
        ...

    def stop(self) -> None: ...

    def roots(self) -> list[int]:
        """The processes whose trees are the system."""
        ...

    def discard(self) -> None:
        """Remove what it keeps outside its root folder (after `stop`)."""
        ...

    def client(self) -> AbstractContextManager[SyncPrefectClient]: ...


@dataclass
class ServeOnSqlite:
    """`sbu serve` on the embedded defaults, its data directory under `root`."""

    root: Path
    label: str = "sbu serve, Prefect and the case store on SQLite"
    port: int = field(default_factory=free_port)
    _system: LocalSystem | None = None

    @staticmethod
    def unavailable() -> str | None:
        return None

    def _local(self) -> LocalSystem:
        if self._system is None:
            raise RuntimeError("the system has not started")
        return self._system

    @property
    def settings(self) -> Settings:
        if self._system is None:
            # Before the first start: the store is all there is.
            return Settings(data_dir=self.root / "var")
        return self._system.settings()

    @property
    def env(self) -> dict[str, str]:
        return self._local().env

    def start(self, *, case_start: datetime | None = None) -> float:
        if case_start is not None or self._system is None:
            self._system = LocalSystem(root=self.root, prefect_port=self.port, time_scale=1.0,
                                       case_start=case_start)
        began = time.monotonic()
        self._system.start(timeout=600.0)
        return time.monotonic() - began

    def stop(self) -> None:
        if self._system is not None:
            self._system.stop()

    def roots(self) -> list[int]:
        local = self._local()
        return [local.serve_pid] if local.serve_running() else []

    def discard(self) -> None:
        """Nothing: all it keeps is under its root folder."""

    @contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        with self._local().client() as client:
            yield client


# The PostgreSQL server the benchmark makes its databases on (one for the case store, one for
# Prefect, per configuration, dropped afterwards): the tests' server by default.
POSTGRES_URL = os.environ.get("SBU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POOL = "bench"
WORKERS = 2
WORKER_LIMIT = 4
BACKGROUND_LIMIT = 2


@dataclass
class PostgresWorkers:
    """The production set-up: the case store and Prefect's server on PostgreSQL (Prefect's own
    `prefect server start`, as a service would run it), the flows registered in a work pool with
    `sbu deploy`, and two `sbu worker` processes, each as it would be on a machine of its own."""

    root: Path
    label: str = "PostgreSQL, `sbu deploy` and two `sbu worker`s"
    port: int = field(default_factory=free_port)
    _system: LocalSystem | None = None
    _server: subprocess.Popen[bytes] | None = None
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _databases: tuple[str, str] | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why this build (or this machine) cannot run it, or None."""
        commands = _sbu_commands()
        missing = [name for name in ("deploy", "worker") if name not in commands]
        if missing:
            named = " or ".join(f"`sbu {name}`" for name in missing)
            return (f"not available on this build: it has no {named} to run Prefect's work pool on "
                    "PostgreSQL with two workers")
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError

        engine = create_engine(POSTGRES_URL)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as error:
            return (f"not available on this machine: no PostgreSQL at SBU_BENCH_POSTGRES_URL "
                    f"({error.orig.__class__.__name__})")
        finally:
            engine.dispose()
        return None

    # -- its databases ---------------------------------------------------------------------------

    def _names(self) -> tuple[str, str]:
        if self._databases is None:
            from sqlalchemy import create_engine, text

            stamp = f"{os.getpid()}_{int(time.time())}"
            names = (f"bench_store_{stamp}", f"bench_prefect_{stamp}")
            admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as connection:
                    for name in names:
                        connection.execute(text(f'CREATE DATABASE "{name}"'))
            finally:
                admin.dispose()
            self._databases = names
        return self._databases

    def _url(self, database: str, *, driver: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(POSTGRES_URL).set(drivername=driver, database=database, query={}).render_as_string(
            hide_password=False)

    @property
    def store_url(self) -> str:
        return self._url(self._names()[0], driver="postgresql+psycopg")

    def discard(self) -> None:
        """Drop its databases (after `stop`)."""
        if self._databases is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for name in self._databases:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        self._databases = None

    # -- the system ------------------------------------------------------------------------------

    def _local(self) -> LocalSystem:
        if self._system is None:
            raise RuntimeError("the system has not started")
        return self._system

    @property
    def settings(self) -> Settings:
        if self._system is None:
            return Settings(data_dir=self.root / "var", database_url=self.store_url)
        return self._system.settings().model_copy(update={"database_url": self.store_url})

    @property
    def env(self) -> dict[str, str]:
        return self._local().env

    def start(self, *, case_start: datetime | None = None) -> float:
        from tasks.mail.sink import MailSink

        began = time.monotonic()
        api_url = f"http://127.0.0.1:{self.port}/api"
        if case_start is not None or self._system is None:
            self._system = LocalSystem(root=self.root, api_url=api_url, time_scale=1.0,
                                       case_start=case_start, extra_env={"SBU_DATABASE_URL": self.store_url})
        system = self._system
        system.data_dir.mkdir(parents=True, exist_ok=True)
        system.sink = MailSink(system.data_dir / "mail", port=int(system.env["SBU_SMTP_PORT"])).start()
        self._server = self._start_server(api_url)
        deployed = system.sbu("deploy", "--pool", POOL, "--background-limit", str(BACKGROUND_LIMIT))
        if "deployments in work pool" not in deployed.stdout:
            raise RuntimeError(f"sbu deploy said: {deployed.stdout.strip()[-300:]}")
        self._workers = [self._start_worker(f"bench-worker-{number}") for number in range(1, WORKERS + 1)]
        return time.monotonic() - began

    def _start_server(self, api_url: str) -> subprocess.Popen[bytes]:
        system = self._local()
        home = system.data_dir / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        env = {**system.env, "PREFECT_HOME": str(home),
               "PREFECT_API_DATABASE_CONNECTION_URL": self._url(self._names()[1],
                                                                driver="postgresql+asyncpg"),
               "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(self.port),
               "PREFECT_UI_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        log = (home / "server.log").open("ab")
        server = subprocess.Popen([str(Path(SBU).with_name("prefect")), "server", "start"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while not _answers(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect's server did not start; see {home / 'server.log'}")
            time.sleep(1.0)
        return server

    def _start_worker(self, name: str) -> subprocess.Popen[bytes]:
        system = self._local()
        path = system.data_dir / f"{name}.log"
        path.write_bytes(b"")
        command = [SBU, "worker", "--pool", POOL, "--limit", str(WORKER_LIMIT), "--name", name]
        worker = subprocess.Popen(command, env=system.env, stdout=path.open("ab"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + 300
        while "polling" not in path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sbu worker {name} did not start; see {path}")
            time.sleep(0.5)
        return worker

    def stop(self) -> None:
        for process in [*self._workers, *([self._server] if self._server else [])]:
            _stop(process)
        self._workers, self._server = [], None
        if self._system is not None and self._system.sink is not None:
            self._system.sink.stop()
            self._system.sink = None

    def roots(self) -> list[int]:
        return [process.pid for process in [*self._workers, *([self._server] if self._server else [])]
                if process.poll() is None]

    @contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        with self._local().client() as client:
            yield client


def _answers(api_url: str) -> bool:
    """Whether a Prefect server answers its health check at `api_url`."""
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group (its flow runs too), SIGKILL after 30 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _sbu_commands() -> set[str]:
    """The `sbu` command's subcommands, as its help lists them ("  name  what it does")."""
    result = subprocess.run([SBU, "--help"], capture_output=True, text=True, timeout=60, check=False)
    return {match.group(1) for line in result.stdout.splitlines()
            if (match := re.match(r"^  ([a-z][a-z-]*)  ", line))}

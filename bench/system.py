"""The system under test, one class per way of running it.

- `ServeOnSqlite`: `sbu serve` with its own Prefect server on SQLite and the case store on SQLite,
  through `deployments.local.LocalSystem` (as the demo and the end-to-end tests run it).
- `PostgresWorkers`: the production set-up, the case store and Prefect's database on PostgreSQL
  with two Prefect workers, started with `sbu deploy` and `sbu worker`. `unavailable()` says why
  it cannot run on a build without those commands; the benchmark reports that row as not
  available rather than measuring something else.

Each gives the benchmark the same things: its settings (the store and the case clock), the `sbu`
command's environment, a Prefect client, and the process ids whose trees are the system (for
CPU and memory).
"""

from __future__ import annotations

import re
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

    @contextmanager
    def client(self) -> Iterator[SyncPrefectClient]:
        with self._local().client() as client:
            yield client


@dataclass
class PostgresWorkers:
    """The production set-up: PostgreSQL for the case store and Prefect, two `sbu worker`s."""

    root: Path
    label: str = "PostgreSQL, `sbu deploy` and two `sbu worker`s"

    @staticmethod
    def unavailable() -> str:
        """Why this build cannot run it."""
        commands = _sbu_commands()
        missing = [name for name in ("deploy", "worker") if name not in commands]
        if missing:
            named = " or ".join(f"`sbu {name}`" for name in missing)
            return (f"not available on this build: it has no {named} to run Prefect's work pool on "
                    "PostgreSQL with two workers")
        return ("not available on this build: `sbu deploy` and `sbu worker` exist, but the benchmark's "
                "PostgreSQL mode (bench/system.py, PostgresWorkers) is not written against them yet")


def _sbu_commands() -> set[str]:
    """The `sbu` command's subcommands, as its help lists them ("  name  what it does")."""
    result = subprocess.run([SBU, "--help"], capture_output=True, text=True, timeout=60, check=False)
    return {match.group(1) for line in result.stdout.splitlines()
            if (match := re.match(r"^  ([a-z][a-z-]*)  ", line))}

"""A real Prefect server for the flow tests, started once per session, and a helper that runs the
whole system (`sbu serve` and a mail sink) against it for one test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from deployments.local import LocalSystem, free_port
from deployments.serve import local_prefect_server
from models.settings import Settings

SystemFactory = Callable[..., LocalSystem]


@pytest.fixture(scope="package")
def prefect_server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of the flow tests' Prefect server (its log is `prefect/server.log`)."""
    return tmp_path_factory.mktemp("prefect-server")


# Package scope: the server stops once the flow tests are done, so it does not run in the
# background through the timing tests of the command line.
@pytest.fixture(scope="package")
def prefect_api_url(prefect_server_home: Path) -> Iterator[str]:
    with local_prefect_server(Settings(data_dir=prefect_server_home), port=free_port()) as url:
        yield url


@pytest.fixture
def local_system(prefect_api_url: str, tmp_path: Path) -> Iterator[SystemFactory]:
    """Start `sbu serve` with its own data directory, mail sink and case clock."""
    started: list[LocalSystem] = []

    def start(*, time_scale: float = 1.0, case_start: datetime | None = None,
              serving: bool = True, extra_env: dict[str, str] | None = None) -> LocalSystem:
        system = LocalSystem(root=tmp_path / f"system-{len(started)}", api_url=prefect_api_url,
                             time_scale=time_scale, case_start=case_start, extra_env=extra_env or {})
        started.append(system)
        return system.start() if serving else system

    yield start
    for system in started:
        system.stop()
        _clear_runs(system)


def _clear_runs(system: LocalSystem) -> None:
    """Delete this test's flow runs, so the next test's runner is not handed its timers."""
    with system.client() as client:
        while runs := client.read_flow_runs(limit=200):
            for run in runs:
                client.delete_flow_run(run.id)

"""The running systems the flow tests drive: a real Prefect server started once per session, a
helper that runs the whole system (`sbu serve` and a mail sink) against it for one test, and one
whole system shared by the tests that only observe what it does.

A test takes a system of its own when it changes something every other test would see: the case
clock's start or speed, serve's settings or environment, or serve itself (stopped, killed). A
test that only refers its own cases (its own external references, so no other test's referral is
taken for the same one) and watches them uses `shared_system`; it must not count what the whole
system holds, only what it added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.local import LocalSystem, free_port
from deployments.serve import SERVER_START_TIMEOUT, local_prefect_server
from models.settings import Settings

SystemFactory = Callable[..., LocalSystem]
# The shared system's case clock: Wednesday 23 December 2026 at noon, running at wall speed, so
# that every case referred on it is referred "today" and nothing of it falls due within a run of
# the suite (the first deadline is the end of the next working day).
SHARED_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)


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


@pytest.fixture(scope="package")
def shared_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """One `sbu serve` and mail sink for every observing test on this worker, started at its first
    use. It has a Prefect server of its own (serve starts it): two serves on one Prefect server
    would serve the same deployments and take each other's runs."""
    system = LocalSystem(root=tmp_path_factory.mktemp("shared-system"), prefect_port=free_port(),
                         case_start=SHARED_START, in_process=True)
    try:
        # Serve starts its Prefect server first: the time allowed for each, one after the other.
        yield system.start(timeout=SERVER_START_TIMEOUT + 120.0)
    finally:
        system.stop()


@pytest.fixture
def local_system(prefect_api_url: str, tmp_path: Path) -> Iterator[SystemFactory]:
    """Start `sbu serve` with its own data directory, mail sink and case clock."""
    started: list[LocalSystem] = []

    def start(*, time_scale: float = 1.0, case_start: datetime | None = None,
              serving: bool = True, extra_env: dict[str, str] | None = None) -> LocalSystem:
        system = LocalSystem(root=tmp_path / f"system-{len(started)}", api_url=prefect_api_url,
                             time_scale=time_scale, case_start=case_start, extra_env=extra_env or {},
                             in_process=True)
        started.append(system)
        return system.start() if serving else system

    yield start
    for system in started:
        system.stop()
        _clear_runs(system)


# As many runs as the server deletes in one request (its BULK_OPERATION_LIMIT).
_DELETE_BATCH = 50


def _clear_runs(system: LocalSystem) -> None:
    """Delete this test's flow runs, so the next test's runner is not handed its timers: fifty a
    request, each batch in one transaction (one request a run took half a minute after a long
    test on a busy machine)."""
    with system.client() as client:
        while True:
            # The server's route, which the typed client does not offer: its own HTTP door.
            answer = client._client.post("/flow_runs/bulk_delete", json={"limit": _DELETE_BATCH})
            answer.raise_for_status()
            if not answer.json()["deleted"]:
                break
        left = client.read_flow_runs(limit=1)
    assert not left, "flow runs left after clearing"

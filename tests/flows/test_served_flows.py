"""What `sbu serve` hands to Prefect's runner: every flow's parameters validate, and each run
starts from the warm forkserver rather than a fresh interpreter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.context import ForkServerProcess
from typing import Any

import cloudpickle
import pytest
from prefect import flow

from deployments import warm_start
from deployments.serve import served_flows
from models.processes import build_registry

pytestmark = [pytest.mark.prefect]

SAMPLE_PARAMETERS: dict[str, dict[str, Any]] = {
    "case": {"case_ref": "SR-2026-0001"},
    "rapid-review": {"case_ref": "SR-2026-0001"},
    "cspr": {"case_ref": "SR-2026-0001"},
    "action-plan": {"case_ref": "SR-2026-0001"},
    "timer-pass": {},
    "deliver-outbox": {"batch_size": 10},
    "reconcile": {"serve_started": datetime(2026, 12, 23, 9, 0, tzinfo=UTC).isoformat()},
    # As the dashboard sends a date typed into a run's parameters.
    "daily-digest": {"day": "2027-01-21"},
    "progress-summary": {"day": "2027-02-01"},
    "yearly-report": {"day": "2027-04-01"},
}


def test_every_served_flow_has_sample_parameters() -> None:
    assert sorted(item.name for item in served_flows(build_registry())) == sorted(SAMPLE_PARAMETERS)


@pytest.mark.parametrize("name", sorted(SAMPLE_PARAMETERS))
def test_a_served_flow_accepts_the_parameters_it_is_sent(name: str) -> None:
    # The runner ships each flow to its child process with cloudpickle, which copies the flow's
    # function with only the globals its body uses. A parameter annotation postponed as a string
    # then names something the copy cannot see, its validation fails, and so does every run
    # before its first line: the reconcile sweep did, through `datetime`.
    served = next(item for item in served_flows(build_registry()) if item.name == name)
    shipped = cloudpickle.loads(cloudpickle.dumps(served.flow))
    assert shipped.validate_parameters(SAMPLE_PARAMETERS[name]).keys() == SAMPLE_PARAMETERS[name].keys()


@flow(name="warm-start-probe", persist_result=False)
def probe() -> int:
    return 42


@pytest.fixture
def warm(prefect_api_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    assert warm_start.install(warm_start.preload_for(build_registry()))
    yield
    warm_start.uninstall()


@pytest.mark.usefixtures("warm")
def test_prefect_starts_served_runs_from_the_forkserver() -> None:
    # The runner starts in-memory flows through this function; if a Prefect upgrade stops it
    # asking `prefect.flow_engine.multiprocessing` for its context, every run falls back to a
    # fresh interpreter (1.5 to 2.5 s each) and this test says so.
    from prefect.flow_engine import run_flow_in_subprocess

    process = run_flow_in_subprocess(probe)
    process.join(timeout=120)
    assert isinstance(process, ForkServerProcess)
    assert process.exitcode == 0


def test_the_forkserver_has_every_flow_module_preloaded() -> None:
    served_modules = {item.flow.fn.__module__ for item in served_flows(build_registry())}
    assert served_modules <= set(warm_start.preload_for(build_registry()))

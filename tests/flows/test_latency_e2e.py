"""The latency target: a recorded decision sets its case moving within 2 s at
the 95th percentile on the embedded defaults (SQLite, a local Prefect server, `sbu serve`). The
ordinary run asserts a margin over it and `make bench` the target itself (`tests.timing`).

Measured from the moment the decision is committed to the case store to the timestamp of the
Running state Prefect records for the case's run, through the same code the `sbu decide` command
runs after its commit (`wake_case`). The CLI's own start-up (about 1.5 s, mostly importing Prefect)
is not in the figure: it comes before the commit.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType

from deployments.local import STALL_ALLOWANCE, wait_until
from models.enums import Interface
from models.forms import DspDecisionForm
from models.processes import StepId
from models.settings import load_settings
from tasks.prefect.resume import wake_case
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES
from tests.flows.conftest import SystemFactory
from tests.timing import bound, samples

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timing]

# Eight decisions in the ordinary run (its p95 is then the slowest of them), fifteen in a benchmark.
CASES = samples(8, 15)
TARGET_P95_SECONDS = 2.0


def test_a_recorded_decision_moves_its_case_within_two_seconds(
        local_system: SystemFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    refs = []
    for n in range(CASES):
        path = tmp_path / f"r{n}.json"
        path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, external_ref=f"POL-LAT-{n}")))
        refs.append(system.sbu_json("refer", str(path))["case_ref"])
    runs = {ref: system.wait_for_wait(ref, "dsp-decision").id for ref in refs}

    for name, value in system.env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    service = CaseService(store=Store(settings.sqlalchemy_url).migrate(), settings=settings,
                          clock=settings.clock())
    form = DspDecisionForm.model_validate({"sin": True, "rapid_review": True,
                                           "rationale": "Criteria met on the facts.", **SIGNATURES,
                                           "decided_on": date(2026, 12, 23)})
    latencies = []
    with system.client() as client:
        for ref in refs:
            service.decide(ref, form, actor=Actor("latency-test", Interface.CLI))
            committed = datetime.now(UTC)
            wake_case(service, ref, step=StepId.DSP_DECISION)

            def running_since(run_id: UUID = runs[ref], after: datetime = committed) -> datetime | None:
                return next((state.timestamp for state in client.read_flow_run_states(run_id)
                             if state.type is StateType.RUNNING and state.timestamp >= after), None)

            started = wait_until(running_since, timeout=30 + STALL_ALLOWANCE, what=f"{ref} to run",
                                 interval=0.1)
            latencies.append((started - committed).total_seconds())
            system.wait_for_wait(ref, "notification-")  # let it settle before the next one
    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    with capsys.disabled():  # the figures belong in every CI log, passing or not
        print(f"\ndecision -> case running: n={len(latencies)} median={statistics.median(latencies):.2f} s "
              f"p95={p95:.2f} s max={latencies[-1]:.2f} s  all={[round(x, 2) for x in latencies]}")
    assert p95 < bound(TARGET_P95_SECONDS)

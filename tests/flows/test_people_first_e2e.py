"""People first: a decision's resumed case run starts at once even with a backlog of background
runs queued before it, because `sbu serve` runs the case flows and the background flows in runners
of their own, each with its own limit (deployments/serve.py).

With one runner for both, the runner takes the oldest scheduled runs first, so the resumed run,
scheduled last, started only once the backlog ahead of it had nearly all been taken."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType

from deployments.local import STALL_ALLOWANCE, wait_until
from deployments.serve import BACKGROUND_RUN_LIMIT
from models.enums import Interface
from models.forms import DspDecisionForm
from models.processes import StepId
from models.settings import load_settings
from tasks.prefect.resume import wake_case
from tasks.prefect.runs import OUTBOX_DEPLOYMENT
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

BACKLOG = 20


def test_a_resumed_case_run_starts_ahead_of_queued_background_runs(
        local_system: SystemFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    ref = system.sbu_json("refer", str(referral))["case_ref"]
    case_run = system.wait_for_wait(ref, "dsp-decision").id

    for name, value in system.env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    service = CaseService(store=Store(settings.sqlalchemy_url).migrate(), settings=settings,
                          clock=settings.clock())
    form = DspDecisionForm.model_validate({"sin": True, "rapid_review": True,
                                           "rationale": "Criteria met on the facts.", **SIGNATURES,
                                           "decided_on": date(2026, 12, 23)})
    with system.client() as client:
        # Background work queued just before the decision, as a timer pass, a sweep and the
        # mail after a busy minute would be.
        outbox = client.read_deployment_by_name(OUTBOX_DEPLOYMENT).id
        backlog = [client.create_flow_run_from_deployment(outbox, name="backlog").id for _ in range(BACKLOG)]
        service.decide(ref, form, actor=Actor("people-first-test", Interface.CLI))
        committed = datetime.now(UTC)
        wake_case(service, ref, step=StepId.DSP_DECISION)

        def running_since(run_id: UUID, after: datetime) -> datetime | None:
            return next((state.timestamp for state in client.read_flow_run_states(run_id)
                         if state.type is StateType.RUNNING and state.timestamp >= after), None)

        started = wait_until(lambda: running_since(case_run, committed), timeout=60 + STALL_ALLOWANCE,
                             what=f"{ref} to run after its decision", interval=0.1)
        # The backlog drains at its own pace; then see which of it started before the case did.
        def drained() -> bool | None:
            return all(run.state is not None and run.state.is_final()
                       for run in map(client.read_flow_run, backlog)) or None

        wait_until(drained, timeout=300 + STALL_ALLOWANCE, what="the background backlog to drain",
                   interval=1.0)
        ahead = [run_id for run_id in backlog
                 if (began := running_since(run_id, committed)) is not None and began < started]
    latency = (started - committed).total_seconds()
    with capsys.disabled():
        print(f"\nresumed case run started {latency:.2f} s after its decision; {len(ahead)} of "
              f"{BACKLOG} background runs queued before it started ahead of it")
    # One runner for both let at least BACKLOG minus its limit start first; with the background
    # in a runner of its own only those already in its slots, and the next few, can.
    assert len(ahead) <= 2 * BACKGROUND_RUN_LIMIT + 2, ahead
    assert latency < 30

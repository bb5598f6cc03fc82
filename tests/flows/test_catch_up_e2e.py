"""What the store commits while Prefect cannot be told reaches Prefect within seconds:
`sbu serve`'s catch-up tells it, long before the full reconciliation sweep (every 10 minutes) would.
Seen for real: a referral made while Prefect's SQLite was busy left its case without a run."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.local import STALL_ALLOWANCE, free_port
from models.processes import RECONCILE_SECONDS
from tests.conftest import EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timing]


def test_a_case_referred_while_prefect_cannot_be_told_gets_its_run_within_seconds(
        local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    # The command finds no Prefect server where it looks: the store has the case, Prefect does not.
    unreachable = {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    referred = system.sbu("refer", str(referral), env=unreachable)
    case_ref = referred.stdout.strip()
    assert "no Prefect server is running" in referred.stderr

    started = time.monotonic()
    system.wait_for_wait(case_ref, "dsp-decision")
    took = time.monotonic() - started
    settings = system.settings()
    assert took < settings.catch_up_seconds + 30 + STALL_ALLOWANCE < RECONCILE_SECONDS
    # And its timers are told: a timer pass is planned for them.
    with system.client() as client:
        passes = [run for run in client.read_flow_runs(limit=200)
                  if run.name.startswith("timer-pass") and run.state_type is not None
                  and run.state_type.value == "SCHEDULED"]
    assert len(passes) == 1

"""`sbu serve` stopped with Ctrl-C in the middle of a case's run, then started again: it stops
cleanly and carries on where it stopped.

"In the middle" is made certain rather than hoped for: the case's run is stopped inside its
`sync-case` task by the fault tests' seam (`SBU_TEST_HOLD`, `tasks.runtime.hold_point`), and serve
is stopped only once the run is seen running there."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.local import STALL_ALLOWANCE, wait_until
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# The first case referred on a new store, on 23 December 2026.
CASE_REF = "SR-2026-0001"


def test_ctrl_c_mid_run_then_restart_carries_on(local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC),
                          extra_env={"SBU_TEST_HOLD": f"sync-case/{CASE_REF}@1"})
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    case_ref = system.sbu_json("refer", str(referral))["case_ref"]
    assert case_ref == CASE_REF
    held = system.data_dir / "holds" / f"sync-case-{case_ref}.held"
    wait_until(held.exists, timeout=60 + STALL_ALLOWANCE, what="the case's run to stop inside a task")
    [interrupted] = system.runs_named(case_ref)
    assert interrupted.state_type is not None
    assert interrupted.state_type.value == "RUNNING"

    started = time.monotonic()
    assert system.stop() == 0
    assert time.monotonic() - started < 15

    system.start()
    system.wait_for_wait(case_ref, "dsp-decision", timeout=90 + STALL_ALLOWANCE)
    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
               *DSP_OPTIONS)
    system.wait_for_wait(case_ref, "notification-", timeout=60 + STALL_ALLOWANCE)
    # The interrupted run is given up on, and exactly one of the case's runs is live now.
    runs = {run.id: run for run in system.runs_named(case_ref)}
    given_up = runs[interrupted.id].state_type
    assert given_up is not None
    assert given_up.value in ("CRASHED", "CANCELLED", "FAILED")
    live = [run for run in runs.values()
            if run.state is not None and run.state.type.value not in ("CRASHED", "CANCELLED", "FAILED")]
    assert len(live) == 1

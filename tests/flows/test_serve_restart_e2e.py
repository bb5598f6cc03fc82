"""`sbu serve` stopped with Ctrl-C in the middle of a case's run, then started again: it stops
cleanly and carries on where it stopped."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.local import STALL_ALLOWANCE
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_ctrl_c_mid_run_then_restart_carries_on(local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    case_ref = system.sbu_json("refer", str(referral))["case_ref"]
    time.sleep(0.5)  # the case's run is being started or is running now

    started = time.monotonic()
    assert system.stop() == 0
    assert time.monotonic() - started < 15

    system.start()
    system.wait_for_wait(case_ref, "dsp-decision", timeout=90 + STALL_ALLOWANCE)
    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
               *DSP_OPTIONS)
    system.wait_for_wait(case_ref, "notification-", timeout=60 + STALL_ALLOWANCE)
    # Whatever the interrupted run was doing, exactly one of the case's runs is live now.
    live = [run for run in system.runs_named(case_ref)
            if run.state is not None and run.state.type.value not in ("CRASHED", "CANCELLED", "FAILED")]
    assert len(live) == 1

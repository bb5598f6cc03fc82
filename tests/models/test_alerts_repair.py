"""The alert when a run Prefect lost is replaced: pure, the store's effects only."""

from __future__ import annotations

import pytest

from models.alerts import run_repair
from models.effects import RepairRun, RunRepairedMail, SendEmail, audit_of
from models.enums import RunLoss

LOST = "0b5f2c1e-8f3a-4f7e-9d3c-2a1b0c9d8e7f"
NEW = "7d1e0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize("loss", list(RunLoss))
def test_a_repair_points_the_store_at_the_new_run_and_tells_the_sbu(loss: RunLoss) -> None:
    repair, mail = run_repair(process="case", loss=loss, replaced=LOST, replacement=NEW)
    assert repair == RepairRun(process="case", loss=loss, replaced=LOST, replacement=NEW)
    assert audit_of(repair) == ("run-repaired", {"process": "case", "loss": loss.value,
                                                 "replaced": LOST, "replacement": NEW})
    assert mail == SendEmail(RunRepairedMail(process="case", loss=loss, replaced=LOST))
    assert audit_of(mail) is None  # the email follows from the repair's own event

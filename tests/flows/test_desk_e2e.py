"""The desk tells Prefect as `sbu record` does: a real Prefect server and `sbu serve`, the desk
in this process on the same store. A referral made at the desk gets its case run at once, and a
decision recorded at the desk wakes that run from its wait, neither waiting for a sweep (serve's
catch-up is set an hour apart here, so only the desk could have told Prefect in time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deployments.local import STALL_ALLOWANCE
from deployments.web.app import desk_app
from models.enums import Interface
from tasks.service import CaseService
from tasks.store.db import Store
from tests.deployments.web.desk_client import DeskClient
from tests.deployments.web.walk import REFERRAL, WALK
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# The walk's referral reaches the SBU on Monday 11 January 2027 at 09:00; case time starts at noon.
CASE_START = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)


def test_the_desk_wakes_the_cases_run(local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=CASE_START, extra_env={"SBU_CATCH_UP_SECONDS": "3600"})
    settings = system.settings()
    store = Store(settings.sqlalchemy_url).migrate()
    service = CaseService(store=store, settings=settings, clock=settings.clock())
    with TestClient(desk_app(settings, service=service), follow_redirects=False) as client:
        desk = DeskClient(client, "Sam Officer").sign_in()
        referred = desk.submit("/desk/refer", REFERRAL)
        assert referred.status_code == 303
        case_ref = referred.headers["location"].rsplit("/", 1)[-1]
        assert "being told" in desk.get(f"/desk/cases/{case_ref}").text
        system.wait_for_wait(case_ref, "dsp-decision", timeout=30 + STALL_ALLOWANCE)

        decided = desk.submit(f"/desk/cases/{case_ref}/record/dsp-decision", WALK[0].right)
        assert decided.status_code == 303
        run = system.wait_for_wait(case_ref, "notification-", timeout=30 + STALL_ALLOWANCE)
    assert run.name == case_ref
    item = service.case_view(case_ref).item("dsp-decision")
    assert item is not None
    assert (item.completed_by, item.completed_via) == ("Sam Officer", Interface.WEB)
    store.dispose()

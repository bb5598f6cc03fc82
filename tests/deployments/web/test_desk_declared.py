"""What a declaration alone brings to the desk, with no line of the desk's own naming it.

- A step added to a built-in process (`tests/models/practitioner_event.py`, registered as a
  partnership would, with `SBU_PROCESS_MODULES`): on a commissioned case's page under its declared
  title and due date, its form the one its declaration names, refused once (nothing written,
  everything typed kept) and recorded once, offered only to the roles its declaration names.
- A process of a partnership's own (`tests.flows.toy_process`), with a role of its own, a step
  for each agency and an anchor date of its own: its role's holder sees its check and nothing
  else, an agency's lead its own agency's visit, and the SBU may give its anchor a new date, which
  the visits follow.

On SQLite only: each walks part of a case first (the forms' walk covers PostgreSQL).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from deployments.web.app import desk_app
from models.clock import FixedClock
from models.enums import Interface, StepState
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.deployments.web.conftest import GATEWAY_KEY, DeskFactory
from tests.deployments.web.desk_client import DeskClient, form_state, problem_at, token_of
from tests.deployments.web.test_desk_forms import refused_then_recorded, snapshot
from tests.deployments.web.test_desk_pages import SQLITE_ONLY, Walker, offered, options_of, refer
from tests.deployments.web.walk import CASE_REF, DSP, LA, PADDED, PEOPLE_TOML, SBU, WALK, CaseDay

PRACTITIONER_EVENT = "tests.models.practitioner_event"
EVENT = "cspr-practitioner-event"
TOY = "tests.flows.toy_process"
INSPECTOR = "tinspector"


@SQLITE_ONLY
def test_a_step_added_by_one_declaration_is_offered_refused_and_recorded(open_desk: DeskFactory,
                                                                         store: Store,
                                                                         walk_clock: FixedClock) -> None:
    officer = open_desk(SBU, gateway=True, people=True, modules=(PRACTITIONER_EVENT,))
    dsp = open_desk(DSP, gateway=True, people=True, modules=(PRACTITIONER_EVENT,))
    la = open_desk(LA, gateway=True, people=True, modules=(PRACTITIONER_EVENT,))
    refer(officer)
    walker = Walker(officer, walk_clock, {DSP: dsp, LA: la})
    walker.until("rr-outcome")
    assert EVENT not in offered(officer)  # no CSPR yet
    # The Rapid Review recommends a local CSPR on Fri 22 Jan 2027: the event opens, due 30 working
    # days later (Fri 5 Mar 2027; no bank holiday between).
    walker.until("rr-report-to-panel")
    path = f"/desk/cases/{CASE_REF}/record/{EVENT}"
    page = officer.get(f"/desk/cases/{CASE_REF}").text
    listed = re.search(rf'<a [^>]*href="{path}">([^<]*)</a>\s*<span class="sub">due ([^<]*)<', page)
    assert listed is not None, "the event is not offered on the case's page"
    assert listed.groups() == ("Practitioner learning event held", "Fri 05 Mar 2027")
    # Only the SBU records it, as its declaration says: a DSP is neither offered it nor let post it.
    assert EVENT not in offered(dsp)
    assert dsp.get(path).status_code == 409

    form = officer.get(path).text
    assert "<h1>Practitioner learning event held" in form
    assert "Rule: 30 working days after cspr-commissioned (local procedure, step 6)." in form
    # Its form is the one its declaration names (`StepCompletionForm`): the day it was held, a reference.
    fields = form_state(form)
    assert set(fields) == {"completed_on", "reference"}
    assert fields["completed_on"] == ["2027-01-25"]  # today, and no later
    assert re.search(r'<input[^>]*id="f-completed-on"[^>]*max="2027-01-25"', form)

    location = refused_then_recorded(officer, store.engine, path,
                                     {"completed_on": "2027-01-25", "reference": "PLE-2027-1"},
                                     {"completed_on": "2027-01-21"}, wrong_at="completed_on",
                                     says="before the step's clock started (Fri 22 Jan 2027)")
    assert location == f"/desk/cases/{CASE_REF}"
    assert "Done: Practitioner learning event held" in officer.get(location).text
    service: CaseService = officer.client.app.state.desk.service  # type: ignore[attr-defined]
    held = service.case_view(CASE_REF).item(EVENT)
    assert held is not None
    assert (held.state, held.completed_on, held.completed_by, held.completed_via) == (
        StepState.DONE, date(2027, 1, 25), SBU, Interface.WEB)
    # Done, it is offered no more.
    assert EVENT not in offered(officer)
    assert officer.get(path).status_code == 409


TOY_PEOPLE = PEOPLE_TOML + f"""
[people.{INSPECTOR}]
name = "Tam Inspector"
roles = ["toy-inspector"]
"""


@SQLITE_ONLY
def test_a_process_of_its_own_brings_its_role_its_steps_and_its_anchor(store: Store, settings: Settings,
                                                                         tmp_path: Path,
                                                                         walk_clock: FixedClock) -> None:
    people = tmp_path / "toy-people.toml"
    people.write_text(TOY_PEOPLE)
    toy = settings.model_copy(update={"people_file": people, "gateway_key": SecretStr(GATEWAY_KEY),
                                      "process_modules": (TOY,)})
    service = CaseService(store=store, settings=toy, clock=walk_clock)
    client = TestClient(desk_app(toy, service=service, tell_prefect=False), follow_redirects=False)
    officer, dsp, inspector, health = (DeskClient(client, handle, GATEWAY_KEY.encode())
                                       for handle in (SBU, DSP, INSPECTOR, "hlead"))
    refer(officer)
    assert offered(inspector) == set()  # the toy starts once the DSPs have decided
    assert dsp.submit(f"/desk/cases/{CASE_REF}/record/dsp-decision", WALK[0].right).status_code == 303
    # The toy's own role records its check, and nothing else; the SBU may too.
    assert offered(inspector) == {"toy-check"}
    assert "toy-check" in offered(officer)
    CaseDay(walk_clock).to(date(2027, 1, 12))
    refused_then_recorded(inspector, store.engine, f"/desk/cases/{CASE_REF}/record/toy-check",
                          {"completed_on": "2027-01-12"}, {"completed_on": "2027-01-08"},
                          wrong_at="completed_on", says="before the step's clock started")
    assert offered(inspector) == set()
    # The check booked a visit for each agency, counted from the toy's own anchor; an agency's lead
    # is offered its own agency's visit only.
    assert offered(health) == {"toy-visit"}
    visit = health.get(f"/desk/cases/{CASE_REF}/record/toy-visit").text
    assert options_of(visit, "agency") == ["health"]
    assert "Toy visit by each agency (Health (ICB))</strong>: due by the end of Tue 02 Feb 2027" in visit

    # The toy's anchor, by its declared title, among the case's dates known so far that the SBU may
    # move; not the referral's (fixed), nor one not reached yet (the SIN is not in).
    path = f"/desk/cases/{CASE_REF}/record/new-anchor-date"
    assert inspector.get(path).status_code == 409
    form = officer.get(path).text
    assert options_of(form, "anchor") == ["la-aware", "decision", "toy-visit-booked"]
    assert "Toy visits booked: now Tue 12 Jan 2027" in form
    # A date it does not offer (the referral's is fixed) is refused at the choice, nothing written.
    before = snapshot(store.engine)
    refused = officer.post(path, {"anchor": "referral-received", "due": "2027-01-13",
                                  "reason": "The referral came a day later.", "csrf_token": token_of(form)})
    assert refused.status_code == 422
    assert problem_at(refused.text, "f-anchor") == "Error: Choose “Which date” from the dates given"
    assert snapshot(store.engine) == before
    refused_then_recorded(officer, store.engine, path,
                          {"anchor": "toy-visit-booked", "due": "2027-01-13",
                           "reason": "The visits were booked a day later."},
                          {"reason": PADDED}, wrong_at="reason", says="at least 10 characters")
    shown = officer.get(f"/desk/cases/{CASE_REF}").text
    assert "New due date: Toy visit by each agency (" in shown
    visits = service.case_view(CASE_REF).items_of("toy-visit")
    assert {(item.anchor_on.isoformat(), item.due.isoformat()) for item in visits} == {
        ("2027-01-13", "2027-02-03")}

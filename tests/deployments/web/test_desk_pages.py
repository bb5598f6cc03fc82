"""The desk's pages and its guards, on a real store: the cases list (filtered, sorted, a closed case
found by its reference), a case's page, what is due, the reports with their charts; the form token
on every post, the security headers on every answer, who may see and submit which form (the people
directory's roles, behind the gateway), and the choices each form offers narrowed to the case."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from deployments.gateway import gateway_app
from deployments.web.app import CONTENT_SECURITY_POLICY, desk_app
from models.clock import FixedClock
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.deployments.web.conftest import GATEWAY_KEY, DeskFactory
from tests.deployments.web.desk_client import DeskClient, form_state, problem_at, token_of
from tests.deployments.web.test_desk_forms import audit_events, snapshot
from tests.deployments.web.walk import CASE_REF, DSP, LA, REFERRAL, SBU, WALK, CaseDay, Submission

# For a test of what a page shows that walks most of the case first: on SQLite only. The walk on
# PostgreSQL (test_desk_forms.py) reads the same pages after every form.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def refer(desk: DeskClient) -> None:
    answer = desk.submit("/desk/refer", REFERRAL)
    assert answer.status_code == 303, answer.text


class Walker:
    """Records the walk, step by step, from where it last stopped."""

    def __init__(self, desk: DeskClient, clock: FixedClock,
                 desks: dict[str, DeskClient] | None = None) -> None:
        self.desk, self.day, self.desks, self.done = desk, CaseDay(clock), desks or {}, 0

    def until(self, key: str, *, occurrence: int = 1) -> Submission:
        """Record up to (not including) the `occurrence`-th submission of `key` in the walk; the
        clock is then on its day."""
        seen = sum(1 for step in WALK[: self.done] if step.key == key)
        for step in WALK[self.done:]:
            self.day.to(step.on)
            if step.key == key:
                seen += 1
                if seen == occurrence:
                    return step
            by = self.desks.get(step.who, self.desk)
            answer = by.submit(f"/desk/cases/{CASE_REF}/record/{step.key}", step.right)
            assert answer.status_code == 303, (step.key, answer.text[:300])
            self.done += 1
        raise AssertionError(f"the walk has no {key} left")


def walk_to(desk: DeskClient, clock: FixedClock, key: str, *, occurrence: int = 1,
            desks: dict[str, DeskClient] | None = None) -> Submission:
    return Walker(desk, clock, desks).until(key, occurrence=occurrence)


# -- the guards ---------------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(open_desk: DeskFactory) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    answers = [desk.get(path) for path in ("/desk/", f"/desk/cases/{CASE_REF}", "/desk/due", "/desk/refer",
                                           "/desk/reports", "/desk/progress", "/desk/static/desk.css",
                                           f"/desk/cases/{CASE_REF}/record/dsp-decision", "/desk/cases/NOPE")]
    answers.append(desk.post("/desk/refer", {"external_ref": "x"}))  # refused: no token
    for answer in answers:
        headers = answer.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, answer.url
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # no script at all: default-src 'none'
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        expected = "private, max-age=3600" if answer.url.path.endswith(".css") else "no-store"
        assert headers["cache-control"] == expected, answer.url
    assert not any("<script" in answer.text for answer in answers)


def test_a_post_without_its_token_is_refused_and_writes_nothing(open_desk: DeskFactory, store: Store) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    path = f"/desk/cases/{CASE_REF}/record/dsp-decision"
    right = WALK[0].right
    good_token = token_of(desk.get(path).text)
    other = open_desk("Kim Other")
    others_token = token_of(other.get(path).text)
    before, events = snapshot(store.engine), audit_events(store.engine)
    altered = good_token[:-1] + ("0" if good_token[-1] != "0" else "1")
    for token in (None, "", "0" * 64, others_token, altered):
        values = dict(right) if token is None else {**right, "csrf_token": token}
        answer = desk.post(path, values)
        assert answer.status_code == 403, token
        assert "Nothing was recorded" in answer.text
        assert "Abuse suspected" not in answer.text  # nothing typed is echoed on a refused post
    # Without the session cookie the token is no one's.
    cookieless = TestClient(desk.client.app, follow_redirects=False)
    assert cookieless.post(path, data={**right, "csrf_token": good_token}).status_code in (303, 403)
    assert snapshot(store.engine) == before
    assert audit_events(store.engine) == events
    assert desk.post(path, {**right, "csrf_token": good_token}).status_code == 303


def test_urls_and_get_forms_carry_no_typed_value(open_desk: DeskFactory) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    for path in ("/desk/", "/desk/due", f"/desk/cases/{CASE_REF}", "/desk/reports", "/desk/refer",
                 f"/desk/cases/{CASE_REF}/record/dsp-decision"):
        html = desk.get(path).text
        for form in re.findall(r"<form[^>]*>.*?</form>", html, re.S):
            if 'method="get"' in form:
                # A GET form only chooses (a stage, a step, an order): nothing typed goes in a URL.
                assert not re.search(r'<input[^>]*type="(text|date|number)"', form), path
                assert "<textarea" not in form
            else:
                assert 'method="post"' in form
                assert "csrf_token" in form


def test_a_case_reference_that_is_not_one_is_not_echoed(open_desk: DeskFactory) -> None:
    desk = open_desk("Sam Officer")
    answer = desk.get("/desk/cases/Jane%20Doe%20born%202019")
    assert answer.status_code == 404
    assert "Jane" not in answer.text


# -- who may see and submit what -----------------------------------------------------------------------

def offered(desk: DeskClient) -> set[str]:
    page = desk.get(f"/desk/cases/{CASE_REF}")
    return set(re.findall(rf'href="/desk/cases/{CASE_REF}/record/([a-z0-9-]+)"', page.text))


def test_roles_decide_which_forms_a_person_sees_and_may_submit(open_desk: DeskFactory, store: Store,
                                                                walk_clock: FixedClock) -> None:
    officer = open_desk(SBU, gateway=True, people=True)
    dsp = open_desk(DSP, gateway=True, people=True)
    la = open_desk(LA, gateway=True, people=True)
    health = open_desk("hlead", gateway=True, people=True)
    refer(officer)
    assert offered(officer) == {"dsp-decision", "new-due-date", "new-anchor-date"}
    assert offered(dsp) == {"dsp-decision"}
    assert offered(la) == set()
    # The local authority may not record the DSPs' decision: not offered, and refused if posted.
    before, events = snapshot(store.engine), audit_events(store.engine)
    token = token_of(la.get("/desk/").text)
    answer = la.post(f"/desk/cases/{CASE_REF}/record/dsp-decision", {**WALK[0].right, "csrf_token": token})
    assert answer.status_code == 409
    assert snapshot(store.engine) == before
    assert audit_events(store.engine) == events
    walk_to(officer, walk_clock, "rr-agency-responses", desks={DSP: dsp, LA: la})
    assert offered(la) == set()  # the SIN and telling the partners are done
    assert offered(health) == {"rr-agency-responses"}
    # An agency's lead records its own agency's information only.
    form = health.get(f"/desk/cases/{CASE_REF}/record/rr-agency-responses").text
    assert options_of(form, "agency") == ["health"]
    assert {"rr-agency-responses", "rr-meeting", "rr-meeting-moved", "new-due-date",
            "new-anchor-date"} <= offered(officer)
    # The recorder is the signed-in user, never a typed name: the form has no such box.
    assert "recorded_by" not in form
    assert "Signed in as <strong>Hal Lead</strong>" in form


def test_a_signature_must_be_the_roles_own_in_the_directory(open_desk: DeskFactory, store: Store) -> None:
    dsp = open_desk(DSP, gateway=True, people=True)
    refer(open_desk(SBU, gateway=True, people=True))
    path = f"/desk/cases/{CASE_REF}/record/dsp-decision"
    form = dsp.get(path).text
    # Each signature is chosen from the directory: the role's holders, then its named deputies.
    police = re.search(r'<select id="f-dsp-police-name".*?</select>', form, re.S)
    assert police is not None
    assert re.findall(r'<option value="([^"]+)"', police.group()) == ["Alex Morgan", "Jo Brook"]
    assert "Jo Brook (named deputy)" in police.group()
    before = snapshot(store.engine)
    wrong = {**WALK[0].right, "dsp_police.name": "Jo Brook"}  # a deputy, not ticked as one
    answer = dsp.post(path, {**wrong, "csrf_token": token_of(form)})
    assert answer.status_code == 422
    said = problem_at(answer.text, "f-dsp-police-name")
    assert said is not None
    assert "not a person holding dsp-police" in said
    assert form_state(answer.text)["dsp_police.name"] == ["Jo Brook"]
    assert snapshot(store.engine) == before
    answer = dsp.post(path, {**wrong, "dsp_police.deputy": "yes", "csrf_token": token_of(form)})
    assert answer.status_code == 303


def test_behind_the_gateway_only_the_gateways_word_is_believed(store: Store, settings: Settings,
                                                                people_file: object,
                                                                walk_clock: FixedClock) -> None:
    gated = settings.model_copy(update={"gateway_key": SecretStr(GATEWAY_KEY), "people_file": people_file})
    service = CaseService(store=store, settings=gated, clock=walk_clock)
    desk = TestClient(desk_app(gated, service=service, tell_prefect=False), follow_redirects=False)
    # No user, a user with no seal, a forged seal, a stale seal: asked to sign in.
    assert desk.get("/desk/").status_code == 401
    assert desk.get("/desk/", headers={"X-Sbu-Desk-User": SBU}).status_code == 401
    assert desk.get("/desk/", headers={"X-Sbu-Desk-User": SBU, "X-Sbu-Desk-Seal": "1.abc"}).status_code == 401
    from deployments.gateway import desk_seal

    stale = desk_seal(GATEWAY_KEY.encode(), user=SBU, at=1)
    assert desk.get("/desk/", headers={"X-Sbu-Desk-User": SBU, "X-Sbu-Desk-Seal": stale}).status_code == 401
    # Sealed, but not in the directory.
    import time

    stranger = desk_seal(GATEWAY_KEY.encode(), user="stranger", at=int(time.time()))
    answer = desk.get("/desk/", headers={"X-Sbu-Desk-User": "stranger", "X-Sbu-Desk-Seal": stranger})
    assert answer.status_code == 403
    # Without a name page: the gateway's user is who records.
    signed = DeskClient(desk, SBU, GATEWAY_KEY.encode())
    assert signed.get("/desk/who").status_code == 303


@pytest.fixture
def through_gateway(store: Store, settings: Settings, people_file: object,
                    walk_clock: FixedClock) -> Iterator[TestClient]:
    """The real gateway (`sbu gateway`) in front of the desk, believing the proxy at "testclient"."""
    gated = settings.model_copy(update={"gateway_key": SecretStr(GATEWAY_KEY), "people_file": people_file,
                                        "gateway_trusted_proxies": ("testclient",)})
    service = CaseService(store=store, settings=gated, clock=walk_clock)
    desk = desk_app(gated, service=service, tell_prefect=False)
    app = gateway_app(gated, upstream=None, transport=httpx.ASGITransport(app=desk),
                      desk_upstream="http://desk")
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_the_gateway_fronts_the_desk_under_desk(through_gateway: TestClient, store: Store) -> None:
    client = through_gateway
    assert client.get("/desk/").status_code == 401  # no user from the proxy
    as_officer = {"X-Forwarded-User": SBU}
    page = client.get("/desk/refer", headers=as_officer)
    assert page.status_code == 200
    assert "Signed in as <strong>Sam Officer</strong>" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    answer = client.post("/desk/refer", data={**REFERRAL, "csrf_token": token_of(page.text)},
                         headers=as_officer)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/desk/cases/{CASE_REF}"
    # A browser's own desk headers are dropped: the gateway's seal names the proxy's user.
    forged = {**as_officer, "X-Sbu-Desk-User": DSP, "X-Sbu-Desk-Seal": "1.forged"}
    assert "Signed in as <strong>Sam Officer</strong>" in client.get("/desk/", headers=forged).text
    with store.engine.connect() as connection:
        from sqlalchemy import select

        from models import schema

        actors = set(connection.execute(select(schema.audit_events.c.actor, schema.audit_events.c.via)).all())
    assert {actor for actor, _via in actors} == {SBU}
    # Anything else goes to Prefect, which is not there.
    assert client.get("/api/health", headers=as_officer).status_code == 503


# -- the choices, narrowed to the case ---------------------------------------------------------------------

def options_of(html: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{re.escape(name)}".*?</select>', html, re.S)
    if select is not None:
        return [value for value in re.findall(r'<option value="([^"]*)"', select.group()) if value]
    return re.findall(rf'<input type="(?:radio|checkbox)"[^>]*name="{re.escape(name)}" value="([^"]+)"', html)


@SQLITE_ONLY
def test_choices_are_titled_and_narrowed_to_the_case(open_desk: DeskFactory, walk_clock: FixedClock) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    refer_form = desk.get("/desk/refer").text
    assert "Children&#39;s social care" in refer_form  # titles, not slugs
    walker = Walker(desk, walk_clock)
    walker.until("action-added")
    add = desk.get(f"/desk/cases/{CASE_REF}/record/action-added").text
    assert options_of(add, "agency") == ["education", "health", "police"]  # the agencies involved
    assert options_of(add, "source") == ["rapid-review", "cspr"]
    walker.until("cspr-imr")
    imr = desk.get(f"/desk/cases/{CASE_REF}/record/cspr-imr").text
    assert options_of(imr, "missing_sections") == [
        "chronology", "analysis-of-key-decisions", "missed-opportunities", "good-practice", "lessons-learned",
        "recommendations"]
    assert "Analysis of key decisions" in imr
    assert options_of(imr, "agency") == ["education", "health", "police"]


@SQLITE_ONLY
def test_the_open_actions_are_offered_by_their_summary(open_desk: DeskFactory,
                                                        walk_clock: FixedClock) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    walk_to(desk, walk_clock, "action", occurrence=1)
    close = desk.get(f"/desk/cases/{CASE_REF}/record/action").text
    assert options_of(close, "action") == ["a1", "a2"]
    assert "A1: Audit the discharge checklist (Health (ICB), due 30 Apr 2027)" in close
    progress = desk.get(f"/desk/cases/{CASE_REF}/record/action-progress").text
    assert "A2: Train staff on information sharing at discharge" in progress


# -- the pages ---------------------------------------------------------------------------------------------

@SQLITE_ONLY
def test_the_case_page_shows_every_process_of_the_case(open_desk: DeskFactory,
                                                       walk_clock: FixedClock) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    walk_to(desk, walk_clock, "cspr-imr", occurrence=2)  # the police IMR received with a section missing
    page = desk.get(f"/desk/cases/{CASE_REF}").text
    assert "Partly received on Sat 20 Feb 2027; sections missing: Chronology" in page
    assert "Town Hall, Room 3" in page  # the meeting as moved
    assert "Audit the discharge checklist" in page  # the action plan: summary, owner, due
    assert "Named Nurse" in page
    assert "Sam Officer" in page  # who did each step
    assert "Local authority submits the Serious Incident Notification" in page
    trail = page[page.index('id="trail-title"'):]
    assert "<td>Sam Officer</td><td>web</td><td>Case referred</td>" in trail  # the audit trail, oldest first
    chart = desk.get(f"/desk/cases/{CASE_REF}/timeline.png")
    assert chart.status_code == 200
    assert chart.content.startswith(b"\x89PNG")


def test_the_cases_list_filters_sorts_and_finds_a_closed_case(open_desk: DeskFactory,
                                                               walk_clock: FixedClock) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    listed = desk.get("/desk/").text
    link = f'href="/desk/cases/{CASE_REF}"'
    assert link in listed
    assert "DSPs decide on a SIN and a Rapid Review" in listed
    assert link not in desk.get("/desk/?stage=cspr").text
    assert link in desk.get("/desk/?stage=awaiting-decision&sort=most-late").text
    CaseDay(walk_clock).to(date(2027, 1, 14))  # the decision, due on the 12th, is late
    assert "1 late" in desk.get("/desk/?late=yes").text
    # A reference typed that is no case: said at the box, what was typed kept.
    token = token_of(listed)
    missing = desk.post("/desk/find", {"case_ref": "SR-2027-0999", "csrf_token": token})
    assert missing.status_code == 404
    assert 'value="SR-2027-0999"' in missing.text
    found = desk.post("/desk/find", {"case_ref": CASE_REF.lower(), "csrf_token": token})
    assert found.headers["location"] == f"/desk/cases/{CASE_REF}"


def test_what_is_due_and_the_reports(open_desk: DeskFactory, walk_clock: FixedClock, store: Store) -> None:
    desk = open_desk("Sam Officer")
    refer(desk)
    walk_to(desk, walk_clock, "rr-agency-responses", occurrence=3)  # 22 January: education's is late
    due = desk.get("/desk/due").text
    assert "Overdue <span class=\"count\">(1)</span>" in due
    assert "Agency information for the Rapid Review (Education)" in due
    by_agency = desk.get("/desk/due?agency=police").text
    assert "(Education)" not in by_agency
    page = desk.get("/desk/reports")
    answer = desk.post("/desk/reports", {"start": "2027-01-01", "end": "2027-03-31",
                                         "csrf_token": token_of(page.text)})
    assert answer.headers["location"] == "/desk/reports/2027-01-01/2027-03-31"
    report = desk.get(answer.headers["location"]).text
    assert "Timeliness per step" in report
    assert CASE_REF in report
    for chart in ("timeliness", "action-ages", f"timeline-{CASE_REF}"):
        drawn = desk.get(f"/desk/reports/2027-01-01/2027-03-31/charts/{chart}.png")
        assert drawn.status_code == 200
        assert drawn.content.startswith(b"\x89PNG")
    wrong = desk.post("/desk/reports", {"start": "2027-03-31", "end": "2027-01-01",
                                        "csrf_token": token_of(page.text)})
    assert wrong.status_code == 422
    assert 'value="2027-03-31"' in wrong.text
    progress = desk.get("/desk/progress").text
    assert CASE_REF in progress


def test_without_the_gateway_the_desk_asks_a_name(store: Store, settings: Settings,
                                                  walk_clock: FixedClock) -> None:
    service = CaseService(store=store, settings=settings, clock=walk_clock)
    client = TestClient(desk_app(settings, service=service, tell_prefect=False), follow_redirects=False)
    assert client.get("/desk/").headers["location"] == "/desk/who"
    page = client.get("/desk/who")
    answer = client.post("/desk/who", data={"name": "Sam\u200bOfficer", "csrf_token": token_of(page.text)})
    assert answer.status_code == 422
    assert "invisible" in answer.text
    assert client.post("/desk/who", data={"name": "Sam Officer",
                                          "csrf_token": token_of(page.text)}).status_code == 303
    assert "Signed in as <strong>Sam Officer</strong>" in client.get("/desk/").text




def test_without_the_gateway_a_directory_is_chosen_from(store: Store, settings: Settings,
                                                        people_file: object, walk_clock: FixedClock) -> None:
    with_people = settings.model_copy(update={"people_file": people_file})
    service = CaseService(store=store, settings=with_people, clock=walk_clock)
    client = TestClient(desk_app(with_people, service=service, tell_prefect=False), follow_redirects=False)
    page = client.get("/desk/who")
    assert '<option value="kshaw">Kim Shaw (kshaw)</option>' in page.text
    refused = client.post("/desk/who", data={"name": "nobody", "csrf_token": token_of(page.text)})
    assert refused.status_code == 422
    assert "directory" in refused.text
    chosen = client.post("/desk/who", data={"name": "kshaw", "csrf_token": token_of(page.text)})
    assert chosen.status_code == 303
    listed = client.get("/desk/").text
    assert "Signed in as <strong>Kim Shaw</strong>" in listed

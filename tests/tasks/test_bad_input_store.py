"""Bad input through the case service into a real store: every refusal leaves
every table exactly as it was (cases, items, records, decisions, audit events, the outbox, timers)
and echoes the value neither in its words nor in the logs. Free text with injection strings is
kept as typed, as data, and reaches no email."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, MetaData, select

from models.clock import FixedClock
from models.enums import Anchor, Interface
from models.errors import SbuError
from models.forms import (
    DspDecisionForm,
    MeetingMoveForm,
    PartnersInformedForm,
    Referral,
    RetimeForm,
    SinSubmissionForm,
    describe_validation_error,
    parse_referral,
)
from models.procedure import YEARS_AHEAD
from models.processes import BUILTIN_PROCESSES, StepId
from models.tables import Decision
from tasks.service import Actor, CaseService
from tests.bad_inputs import (
    CLASSES,
    INJECTIONS,
    LINE_BREAKS,
    SLOTS,
    Kind,
    Tally,
    bad_input,
    bad_value,
    echoes,
    example_of,
    put,
    valid_answer,
)
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES, STEP_FORMS

OFFICER = Actor("sbu-officer", Interface.CLI)
CANARY = "Q7zK9-canary"
TALLY = Tally("store")
ACTS: dict[type[BaseModel], str] = {act.form: act.name for process in BUILTIN_PROCESSES
                                    for act in process.acts}
STEPS: dict[type[BaseModel], str] = {}
for _step, _form in STEP_FORMS.items():
    STEPS.setdefault(_form, _step)


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    TALLY.record()


_TABLES: dict[Engine, MetaData] = {}


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text: equal snapshots mean nothing was written."""
    metadata = _TABLES.get(engine)
    if metadata is None:
        metadata = _TABLES[engine] = MetaData()
        metadata.reflect(engine)
    with engine.connect() as connection:
        return {name: sorted(tuple(map(repr, row)) for row in connection.execute(select(table)))
                for name, table in metadata.tables.items()}


def decided_case(service: CaseService) -> str:
    """A case whose DSPs decided on a SIN and a Rapid Review: the SIN submission is open."""
    ref = service.refer(parse_referral(EXAMPLE_REFERRAL, now=EXAMPLE_NOW), actor=OFFICER).case_ref
    service.decide(ref, DspDecisionForm.model_validate(
        {"sin": True, "rapid_review": True, "rationale": "Criteria met on the facts known.", **SIGNATURES,
         "decided_on": "2026-12-23"}), actor=OFFICER)
    return ref


def submit(service: CaseService, case_ref: str, form: type[BaseModel], raw: Any) -> str | None:
    """Send `raw` as an interface does (validated into its form, then to the service); the words of
    the refusal, or None if it was accepted."""
    try:
        if form is Referral:
            service.refer(parse_referral(raw, now=service.clock.now()), actor=OFFICER)
        elif form is RetimeForm:
            service.retime(case_ref, StepId.PARTNERS_INFORMED, RetimeForm.model_validate(raw), actor=OFFICER)
        elif form in ACTS:
            service.act(case_ref, ACTS[form], form.model_validate(raw), actor=OFFICER)
        else:
            service.record(case_ref, STEPS[form], form.model_validate(raw), actor=OFFICER)
    except ValidationError as error:
        return describe_validation_error(error)
    except SbuError as error:
        return str(error)
    return None


@pytest.mark.parametrize("what", CLASSES)
@bad_input(20)
@given(data=st.data())
def test_bad_input_of_every_class_writes_nothing_and_echoes_nothing(
        service: CaseService, caplog: pytest.LogCaptureFixture, what: str, data: st.DataObject) -> None:
    if not hasattr(service, "_decided"):
        service._decided = decided_case(service)  # type: ignore[attr-defined]  # once per test, not per example
    ref: str = service._decided  # type: ignore[attr-defined]
    # Free text that is only injection-looking is kept (tested below); here, what is refused.
    slots = [slot for slot in SLOTS if not (what == "injection" and slot.kind in (Kind.FREE, Kind.LINE))]
    slot, value, _keep = data.draw(bad_value(what, slots), label="bad")
    raw = put(valid_answer(slot.form), slot.path, value)
    before = snapshot(service.store.engine)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        message = submit(service, ref, slot.form, raw)
    written = snapshot(service.store.engine) != before
    echoed = echoes(value, message or "", caplog.text, known=example_of(slot))
    TALLY.add(what, accepted_wrongly=message is None, echoed=bool(echoed), written=written)
    assert message is not None, f"{slot!r} accepted"
    assert not written
    assert not echoed, echoed[:3]
    assert slot.field in message


@bad_input(60)
@given(data=st.data())
def test_dates_the_case_rules_out_write_nothing(service: CaseService, data: st.DataObject) -> None:
    """Dates each valid on their own that the case refuses: in the future, before the step's
    clock started, a due date in the past, or decades ahead."""
    if not hasattr(service, "_decided"):
        service._decided = decided_case(service)  # type: ignore[attr-defined]
    ref: str = service._decided  # type: ignore[attr-defined]
    today = EXAMPLE_NOW.date()
    far = date(today.year + YEARS_AHEAD + 1, 1, 1)
    which = data.draw(st.sampled_from(["future", "before-clock", "retime-past", "retime-far", "anchor-far",
                                       "meeting-far", "meeting-past"]), label="which")
    before = snapshot(service.store.engine)
    if which in ("future", "before-clock"):
        on = data.draw(st.dates(today + timedelta(days=1), date(2199, 12, 31)) if which == "future"
                       else st.dates(date(1900, 1, 1), date(2026, 12, 21)))
        # Partners informed stays open throughout (the meeting's branch records only the SIN).
        message = submit(service, ref, PartnersInformedForm, {"completed_on": on})
        field = "completed_on"
    elif which.startswith("retime"):
        due = data.draw(st.dates(date(1900, 1, 1), today - timedelta(days=1)) if which == "retime-past"
                        else st.dates(far, date(2199, 12, 31)))
        message = submit(service, ref, RetimeForm, {"due": due, "reason": "The chair is away that week."})
        field = "due"
    elif which == "anchor-far":
        on = data.draw(st.dates(far, date(2199, 12, 31)))
        try:
            service.move_anchor(ref, Anchor.PLANNED_PUBLICATION,
                                RetimeForm(due=on, reason="The trial has moved."), actor=OFFICER)
            message = None
        except SbuError as error:
            message = str(error)
        field = "planned-publication"
    else:
        # The meeting moves only once the Rapid Review has started: record the SIN first (a
        # write of its own, after which the snapshot is taken again).
        if not hasattr(service, "_rr"):
            assert submit(service, ref, SinSubmissionForm, {"national_ref": "CSIN-1",
                                                            "completed_on": today}) is None
            service._rr = True  # type: ignore[attr-defined]
        before = snapshot(service.store.engine)
        meeting_on = data.draw(st.dates(far, date(2199, 12, 31)) if which == "meeting-far"
                               else st.dates(date(1900, 1, 1), today - timedelta(days=1)))
        message = submit(service, ref, MeetingMoveForm, {"meeting_on": meeting_on, "start_time": "10:00",
                                                         "place": "Room 4", "reason": "The chair is away."})
        field = "meeting_on"
    written = snapshot(service.store.engine) != before
    TALLY.add("dates", accepted_wrongly=message is None, written=written)
    assert message is not None
    assert field in message or "due date" in message
    assert not written


@pytest.mark.parametrize("case_ref", ["SR-2026-0001\r\nBcc: someone@attacker.test",
                                      "'; DROP TABLE cases; --", "../../etc/passwd", "SR\u200b-2026-0001",
                                      "SR-٢٠٢٦-0001", "{{ 7*7 }}", "x" * 100_000])
def test_a_case_reference_that_is_no_case_is_refused_without_echo(service: CaseService,
                                                                  case_ref: str) -> None:
    before = snapshot(service.store.engine)
    message = submit(service, case_ref, SinSubmissionForm, {"national_ref": "CSIN-1",
                                                            "completed_on": "2026-12-23"})
    written = snapshot(service.store.engine) != before
    echoed = echoes(case_ref, message or "")
    TALLY.add("injection", accepted_wrongly=message is None, echoed=bool(echoed), written=written)
    assert message is not None
    assert message.startswith("no case")
    assert not echoed
    assert not written


@pytest.mark.parametrize("payload", INJECTIONS + [f"First line{brk}second line" for brk in ("\n", "\r\n")])
def test_free_text_that_looks_like_code_is_kept_as_typed_and_reaches_no_email(
        service: CaseService, clock: FixedClock, payload: str) -> None:
    ref = service.refer(parse_referral(EXAMPLE_REFERRAL, now=EXAMPLE_NOW), actor=OFFICER).case_ref
    rationale = f"Criteria met {CANARY}: {payload}"
    signatures = {role: {"name": f"Dana {payload}"[:80]} for role in SIGNATURES}
    names_ok = all(ch not in payload for ch in "<>\r\n")
    raw = {"sin": True, "rapid_review": True, "rationale": rationale, "decided_on": "2026-12-23",
           **(signatures if names_ok else SIGNATURES)}
    assert submit(service, ref, DspDecisionForm, raw) is None
    with service.store.reading() as session:
        [decision] = session.scalars(select(Decision)).all()
        # Kept exactly, as a value: the SQL ran as data, the template was not rendered.
        assert decision.rationale == rationale.strip()
        if names_ok:
            names = {signed["name"] for signed in decision.sign_off["sign_off"]}
            assert names == {f"Dana {payload}"[:80].strip()}
    rows = snapshot(service.store.engine)
    for table in ("outbox", "audit_events", "items", "cases", "timers"):
        assert CANARY not in str(rows[table]), table
        assert payload not in str(rows[table]), table
    assert len(rows["cases"]) == 1  # nothing dropped, nothing added
    TALLY.add("injection")


@pytest.mark.parametrize("brk", LINE_BREAKS)
def test_a_line_break_in_a_meeting_place_never_reaches_the_invitation(service: CaseService, brk: str) -> None:
    ref = decided_case(service)
    assert submit(service, ref, SinSubmissionForm, {"national_ref": "CSIN-1", "completed_on": "2026-12-23"}) \
        is None
    before = snapshot(service.store.engine)
    message = submit(service, ref, MeetingMoveForm, {
        "meeting_on": "2027-01-06", "start_time": "10:00", "place": f"Room 4{brk}Bcc: x@attacker.test",
        "reason": "The chair is away."})
    written = snapshot(service.store.engine) != before
    TALLY.add("crlf", accepted_wrongly=message is None, written=written)
    assert message is not None
    assert message.startswith("place: ")
    assert not written

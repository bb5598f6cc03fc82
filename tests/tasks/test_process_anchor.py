"""A process's own anchor and email, through the case service and a real store: the toy process
(`tests.flows.toy_process`) books its visits when its check is recorded, as an anchor of the case
from which they are counted, and tells the SBU by an email of its own; a person moves that anchor
as any other, with a reason, and the visits follow. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from models.clock import FixedClock
from models.enums import Anchor, Role, StepState
from models.errors import Refused
from models.forms import RetimeForm, StepCompletionForm
from models.settings import Settings
from models.tables import AuditEvent, CaseAnchor, OutboxMessage
from tasks.service import CaseService
from tasks.store.db import Store
from tests.tasks.test_service import OFFICER, decision, referral

BOOKED = Anchor("toy-visit-booked")
AGENCIES = ("children-social-care", "education", "health", "police")


@pytest.fixture
def toy_service(store: Store, settings: Settings, clock: FixedClock) -> CaseService:
    toy = settings.model_copy(update={"process_modules": ("tests.flows.toy_process",)})
    return CaseService(store=store, settings=toy, clock=clock)


def test_recording_the_check_sets_the_toys_anchor_counts_its_visits_and_sends_its_email(
        toy_service: CaseService) -> None:
    ref = toy_service.refer(referral(), actor=OFFICER).case_ref
    decided = toy_service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    assert "toy" in decided.started
    assert toy_service.case_view(ref).items_of("toy-visit") == []  # booked by the check

    recorded = toy_service.record(ref, "toy-check", StepCompletionForm(completed_on=date(2026, 12, 23)),
                                  actor=OFFICER)
    assert recorded.completed == ("toy-check",)
    assert set(recorded.opened) == {f"toy-visit:{agency}" for agency in AGENCIES}
    view = toy_service.case_view(ref)
    assert view.anchors[BOOKED] == date(2026, 12, 23)
    as_json = view.as_json(stage=toy_service.registry.stage_of(view))
    assert as_json["anchors"]["toy-visit-booked"] == "2026-12-23"
    # Fifteen working days from Wednesday 23 December 2026: Christmas, Boxing Day (on the 28th)
    # and New Year's Day are not working days.
    visits = view.items_of("toy-visit")
    assert {(v.anchor, v.anchor_on, v.due, v.state) for v in visits} == {
        (BOOKED, date(2026, 12, 23), date(2027, 1, 18), StepState.OPEN)}
    assert {v.rule for v in visits} == {"15 working days after toy-visit-booked"}

    with toy_service.store.reading() as session:
        [email] = session.scalars(select(OutboxMessage)
                                  .where(OutboxMessage.event == "toy-visits-booked")).all()
        [row] = session.scalars(select(CaseAnchor).where(CaseAnchor.anchor == BOOKED)).all()
    assert row.anchor is BOOKED
    assert email.recipients == {"to": [toy_service.directory.address(Role.SBU)], "cc": []}
    assert email.subject == (f"[{ref}] Toy visits booked on Wednesday 23 December 2026: 4 due by "
                             "Monday 18 January 2027")
    assert "each due by Monday 18 January 2027 (2027-01-18)" in email.body_text
    assert email.case_ref == ref


def test_a_person_moves_the_toys_anchor_and_its_visits_follow(toy_service: CaseService) -> None:
    ref = toy_service.refer(referral(), actor=OFFICER).case_ref
    toy_service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    toy_service.record(ref, "toy-check", StepCompletionForm(completed_on=date(2026, 12, 23)), actor=OFFICER)

    later = RetimeForm(due=date(2026, 12, 24), reason="Booked a day later")
    moved = toy_service.move_anchor(ref, BOOKED, later, actor=OFFICER)
    assert set(moved.retimed) == {f"toy-visit:{agency}" for agency in AGENCIES}
    view = toy_service.case_view(ref)
    assert view.anchors[BOOKED] == date(2026, 12, 24)
    assert {(v.anchor_on, v.due) for v in view.items_of("toy-visit")} == {
        (date(2026, 12, 24), date(2027, 1, 19))}
    with toy_service.store.reading() as session:
        actions = [event.action for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions.count("anchor-moved") == 1


def test_without_the_toy_registered_its_anchor_cannot_be_moved(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    with pytest.raises(Refused, match="there is no anchor date toy-visit-booked"):
        service.move_anchor(ref, BOOKED, RetimeForm(due=date(2026, 12, 24), reason="Booked a day later"),
                            actor=OFFICER)

"""Who may record which step (`models.access`): pure rules over a small directory of people."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from models.access import (
    NOT_IN_DIRECTORY,
    People,
    Person,
    check_change,
    check_record,
    check_referral,
    is_role,
    roles_to_record,
    sealed,
    unsealed,
)
from models.effects import Acted, AnchorMoved, Event, Recorded, Retimed
from models.enums import Agency, Anchor
from models.errors import Refused
from models.forms import AgencyResponseForm, DspDecisionForm, SinSubmissionForm
from models.processes import StepId, build_registry

PEOPLE = People.of([
    Person("dlee", "Dana Lee", frozenset({"dsp-la"})),
    Person("spatel", "Sam Patel", frozenset({"dsp-health"})),
    Person("amorgan", "Alex Morgan", frozenset({"dsp-police"})),
    Person("jbrook", "Jo Brook", frozenset({"sbu"}), deputy_for=frozenset({"dsp-police"})),
    Person("kshaw", "Kim Shaw", frozenset({"local-authority"})),
    Person("pward", "Pat Ward", frozenset({"agency:health"})),
])
REGISTRY = build_registry(())
SIGNED = {"dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
          "dsp_police": {"name": "Alex Morgan"}}


def decision(**signatures: Any) -> DspDecisionForm:
    return DspDecisionForm.model_validate({
        "sin": True, "rapid_review": True, "rationale": "Criteria met on the facts known.",
        **SIGNED, **signatures, "decided_on": date(2026, 12, 23)})


@pytest.mark.parametrize(("actor", "allowed"), [
    ("jbrook", True), ("dlee", True), ("spatel", True), ("amorgan", True),
    ("kshaw", False), ("pward", False)])
def test_the_dsp_decision_is_recorded_by_the_sbu_or_a_dsp(actor: str, allowed: bool) -> None:
    if allowed:
        assert check_record(PEOPLE, registry=REGISTRY, actor=actor, step=StepId.DSP_DECISION,
                            form=decision()).handle == actor
    else:
        with pytest.raises(Refused, match="dsp-decision may be recorded only by"):
            check_record(PEOPLE, registry=REGISTRY, actor=actor, step=StepId.DSP_DECISION, form=decision())


def test_each_dsp_signature_must_be_a_person_holding_that_role() -> None:
    # Sam Patel holds dsp-health, not dsp-la: the signature names the field, never the name.
    with pytest.raises(Refused) as refused:
        check_record(PEOPLE, registry=REGISTRY, actor="jbrook", step=StepId.DSP_DECISION,
                     form=decision(dsp_la={"name": "Sam Patel"}))
    assert str(refused.value).startswith("dsp_la: the signature is not a person holding dsp-la")
    assert "Sam" not in str(refused.value)
    with pytest.raises(Refused, match=r"^dsp_police: the signature is not a person in the"):
        check_record(PEOPLE, registry=REGISTRY, actor="jbrook", step=StepId.DSP_DECISION,
                     form=decision(dsp_police={"name": "Someone Else"}))


def test_a_named_deputy_signs_only_as_a_deputy_and_only_for_their_role() -> None:
    # Jo Brook is the police DSP's named deputy: as a deputy, yes; as the role-holder, no.
    check_record(PEOPLE, registry=REGISTRY, actor="jbrook", step=StepId.DSP_DECISION,
                 form=decision(dsp_police={"name": "jo  brook", "deputy": True}))
    with pytest.raises(Refused, match=r"^dsp_police: .* holding dsp-police"):
        check_record(PEOPLE, registry=REGISTRY, actor="jbrook", step=StepId.DSP_DECISION,
                     form=decision(dsp_police={"name": "Jo Brook"}))
    with pytest.raises(Refused, match=r"^dsp_health: .* a named deputy for dsp-health"):
        check_record(PEOPLE, registry=REGISTRY, actor="jbrook", step=StepId.DSP_DECISION,
                     form=decision(dsp_health={"name": "Jo Brook", "deputy": True}))
    # A role-holder who ticks "deputy" is not a named deputy.
    with pytest.raises(Refused, match=r"^dsp_la: .* a named deputy for dsp-la"):
        check_record(PEOPLE, registry=REGISTRY, actor="dlee", step=StepId.DSP_DECISION,
                     form=decision(dsp_la={"name": "Dana Lee", "deputy": True}))


@pytest.mark.parametrize(("step", "subject", "expected"), [
    (StepId.DSP_DECISION, "", {"sbu", "dsp-la", "dsp-health", "dsp-police"}),
    (StepId.RR_OUTCOME, "", {"sbu", "dsp-la", "dsp-health", "dsp-police"}),
    (StepId.SIN_SUBMISSION, "", {"sbu", "local-authority"}),
    (StepId.PARTNERS_INFORMED, "", {"sbu", "local-authority"}),
    (StepId.RR_AGENCY_RESPONSES, "health", {"sbu", "agency:health"}),
    (StepId.CSPR_IMR, "police", {"sbu", "agency:police"}),
    (StepId.RR_MEETING, "", {"sbu"}),
    (StepId.CSPR_PUBLICATION, "", {"sbu"}),
    ("a-partnerships-own-step", "", {"sbu"}),
])
def test_who_may_record_each_step(step: str, subject: str, expected: set[str]) -> None:
    assert roles_to_record(REGISTRY, step, subject) == expected


def test_an_agency_records_its_own_response_and_no_other() -> None:
    registry = build_registry(())
    own = AgencyResponseForm(agency=Agency.HEALTH, completed_on=date(2026, 12, 24))
    other = AgencyResponseForm(agency=Agency.POLICE, completed_on=date(2026, 12, 24))
    check_change(PEOPLE, actor="pward", event=Recorded(StepId.RR_AGENCY_RESPONSES, own), registry=registry)
    with pytest.raises(Refused, match="agency:police"):
        check_change(PEOPLE, actor="pward", event=Recorded(StepId.RR_AGENCY_RESPONSES, other),
                     registry=registry)
    check_change(PEOPLE, actor="jbrook", event=Recorded(StepId.RR_AGENCY_RESPONSES, other),
                 registry=registry)


def test_the_sin_is_recorded_by_the_local_authority_or_the_sbu() -> None:
    registry = build_registry(())
    form = SinSubmissionForm(national_ref="CSIN-1", completed_on=date(2026, 12, 24))
    for actor in ("kshaw", "jbrook"):
        check_change(PEOPLE, actor=actor, event=Recorded(StepId.SIN_SUBMISSION, form), registry=registry)
    with pytest.raises(Refused):
        check_change(PEOPLE, actor="dlee", event=Recorded(StepId.SIN_SUBMISSION, form), registry=registry)


def test_acts_and_new_due_dates_are_the_sbus() -> None:
    registry = build_registry(())
    events: list[Event] = [Acted("meeting-moved", decision()),
                           Retimed(StepId.CSPR_IMR, "police", date(2027, 1, 9), "x"),
                           AnchorMoved(Anchor.PLANNED_PUBLICATION, date(2027, 6, 1), "x")]
    for event in events:
        check_change(PEOPLE, actor="jbrook", event=event, registry=registry)
        with pytest.raises(Refused, match="may be recorded only by sbu"):
            check_change(PEOPLE, actor="kshaw", event=event, registry=registry)


@pytest.mark.parametrize("actor", ["mallory", "", "Dana Lee", "dlee\r\nX-Injected: 1", "' OR 1=1 --"])
def test_an_unknown_actor_is_refused_without_echoing_the_name(actor: str) -> None:
    with pytest.raises(Refused) as refused:
        check_referral(PEOPLE, actor=actor)
    assert str(refused.value) == NOT_IN_DIRECTORY
    with pytest.raises(Refused) as refused:
        check_record(PEOPLE, registry=REGISTRY, actor=actor, step=StepId.RR_MEETING)
    assert str(refused.value) == NOT_IN_DIRECTORY


def test_anyone_in_the_directory_may_refer() -> None:
    assert {check_referral(PEOPLE, actor=p).handle for p in PEOPLE.by_handle} == set(PEOPLE.by_handle)


def test_a_seal_names_its_user_only_for_its_run_and_key() -> None:
    key, other = b"k" * 32, b"o" * 32
    value = sealed(key, run_id="r1", pause_key="dsp-decision", user="dlee")
    assert unsealed(key, value, run_id="r1", pause_key="dsp-decision") == "dlee"
    assert unsealed(other, value, run_id="r1", pause_key="dsp-decision") is None
    assert unsealed(key, value, run_id="r2", pause_key="dsp-decision") is None
    assert unsealed(key, value, run_id="r1", pause_key="dsp-decision-2") is None
    assert unsealed(key, value.replace("dlee", "jbrook", 1), run_id="r1", pause_key="dsp-decision") is None
    assert unsealed(key, "dlee", run_id="r1", pause_key="dsp-decision") is None


def test_a_registered_process_says_who_records_its_steps_with_a_role_of_its_own() -> None:
    registry = build_registry(["tests.flows.toy_process"])
    assert registry.roles == {"toy-inspector"}
    # The toy's visit: the SBU or the lead of the agency it is for; its check: its own inspector too.
    assert roles_to_record(registry, "toy-visit", "police") == {"sbu", "agency:police"}
    assert roles_to_record(registry, "toy-check") == {"sbu", "toy-inspector"}
    inspector = Person("tking", "Tam King", frozenset({"toy-inspector"}))
    people = People.of([*PEOPLE.by_handle.values(), inspector])
    form = AgencyResponseForm(agency=Agency.HEALTH, completed_on=date(2026, 12, 24))
    assert check_record(people, registry=registry, actor="tking", step="toy-check").handle == "tking"
    assert check_record(people, registry=registry, actor="pward", step="toy-visit", subject="health",
                        form=form).handle == "pward"
    with pytest.raises(Refused, match="toy-visit may be recorded only by agency:police, sbu"):
        check_record(people, registry=registry, actor="pward", step="toy-visit", subject="police")
    with pytest.raises(Refused, match="toy-check may be recorded only by sbu, toy-inspector"):
        check_record(people, registry=registry, actor="kshaw", step="toy-check")
    # The inspector holds a role of the toy's, not the procedure's: nothing of the procedure's is theirs.
    with pytest.raises(Refused, match="rr-meeting may be recorded only by sbu"):
        check_record(people, registry=registry, actor="tking", step=StepId.RR_MEETING)
    # A people file may name the toy's role only when the toy is registered.
    assert is_role("toy-inspector", declared=registry.roles)
    assert not is_role("toy-inspector")

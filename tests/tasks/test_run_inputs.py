"""The dashboard's forms are derived from the domain's: no field is copied by hand, the types are
loosened so that any answer the dashboard sends is read, a wait offering several things to record
offers each as a choice of its own, and the flow validates each answer into the domain form. The
schemas checked are those Prefect stores for a case with every item of the wait open."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from models.enums import Agency, Anchor, Role
from models.forms import (
    AgencyResponseForm,
    DspDecisionForm,
    MeetingMoveForm,
)
from models.processes import BUILTIN_PROCESSES, StepId
from models.processes.case import CASE
from models.processes.rapid_review import RAPID_REVIEW
from models.refusals import validation_in_words
from models.registry import TAB_BUDGET, Act, Step, Wait, choice_label
from models.timetable import WorkingDaysAfter
from tasks.run_inputs import domain_form, run_input_for
from tests.conftest import SIGNATURES
from tests.tasks.test_dashboard_form_schemas import fields, open_case, stored_schema

DECISION = CASE.wait_named("dsp-decision")
MEETING = RAPID_REVIEW.wait_named("rr-meeting")
EVERY_WAIT = [wait for process in BUILTIN_PROCESSES for wait in process.waits]


def schema_of(wait: Wait) -> dict[str, Any]:
    process = next(process for process in BUILTIN_PROCESSES if wait in process.waits)
    return stored_schema(wait, open_case(process, wait))


def test_the_decision_form_has_the_domain_fields_with_their_titles_and_descriptions() -> None:
    properties = schema_of(DECISION)["properties"]
    assert list(properties) == [*DspDecisionForm.model_fields, "recorded_by"]
    assert (properties["sin"]["title"], properties["dsp_la"]["title"]) == (
        "SIN", "Director of Children's Services (local authority)")
    for name, info in DspDecisionForm.model_fields.items():
        assert properties[name]["description"] == info.description


def test_a_required_yes_or_no_is_a_choice_so_leaving_it_alone_is_not_no() -> None:
    properties = schema_of(DECISION)["properties"]
    assert properties["sin"]["enum"] == ["yes", "no"]
    assert "sin" in schema_of(DECISION)["required"]
    # A yes-or-no with a default (a deputy signing) stays a switch.
    signature = schema_of(DECISION)["properties"]["dsp_la"]["properties"]
    assert signature["deputy"]["type"] == "boolean"


def test_the_dashboard_types_carry_no_constraint_that_would_quote_an_answer() -> None:
    for wait in EVERY_WAIT:
        text = str(schema_of(wait))
        assert not any(word in text for word in ("pattern", "minLength", "maxLength", "minItems")), wait.name


def test_a_wait_with_several_choices_offers_each_with_its_own_titled_fields() -> None:
    schema = schema_of(MEETING)
    assert set(schema["properties"]) == {"record", "recorded_by"}
    variants = schema["properties"]["record"]["anyOf"]
    # Short tabs (the dialog is 512 px wide and does not wrap them), the full title beneath.
    assert [variant["title"] for variant in variants] == ["Agency info", "Meeting held", "Meeting moved"]
    assert variants[0]["description"].startswith("Agency information for the Rapid Review.")
    moved = variants[2]["properties"]
    assert [moved[name]["title"] for name in moved] == ["Meeting date", "Start time", "Place or link",
                                                        "Reason"]
    # The UI tells which choice an answer is by its fields, so no two choices share a field name.
    names = [set(variant["properties"]) for variant in variants]
    assert all(not a & b for i, a in enumerate(names) for b in names[i + 1:])


@pytest.mark.parametrize("wait", [w for w in EVERY_WAIT if len(w.choices) > 1], ids=lambda w: w.name)
def test_every_forms_tabs_fit_the_dashboards_dialog(wait: Wait) -> None:
    labels = [choice_label(choice) for choice in wait.choices]
    assert sum(len(label) for label in labels) <= TAB_BUDGET, labels
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("wait", EVERY_WAIT, ids=lambda w: w.name)
def test_every_form_is_titled_as_its_wait_and_every_field_has_a_title_of_its_own(wait: Wait) -> None:
    schema = schema_of(wait)
    assert schema["title"] == wait.title
    for path, prop, _parent in fields(schema):
        # A title pydantic made from the field name would read "Dsps Present".
        assert "title" in prop, (wait.name, path)


def test_a_field_added_to_a_domain_form_appears_on_the_dashboard() -> None:
    class VisitForm(BaseModel):
        completed_on: date = Field(title="Visited on", description="When the visit was made.")
        visitor_role: str = Field(title="Visitor's role", description="Who visited, by role.")

    spec = Step("toy-visit", "Visit", owner=Role.SBU, anchor=Anchor.DECISION, source="a test",
                clock=WorkingDaysAfter(1), form=VisitForm)
    properties = run_input_for(Wait("toy-visit", "Visit", (spec,))).model_json_schema()["properties"]
    assert properties["visitor_role"]["title"] == "Visitor's role"


def test_an_answer_is_validated_into_its_domain_form() -> None:
    model = run_input_for(MEETING)
    answer = model.model_validate({"record": {"rr_agency_responses__agency": "police",
                                              "rr_agency_responses__completed_on": "2026-12-23"},
                                   "recorded_by": "Robin"})
    spec, form = domain_form(MEETING, answer)
    assert isinstance(spec, Step)
    assert spec.step == StepId.RR_AGENCY_RESPONSES
    assert form == AgencyResponseForm(agency=Agency.POLICE, completed_on=date(2026, 12, 23))
    moved = model.model_validate({"record": {"rr_meeting_moved__meeting_on": "2027-01-12",
                                             "rr_meeting_moved__start_time": "14:00",
                                             "rr_meeting_moved__place": "Room 3",
                                             "rr_meeting_moved__reason": "The chair is away that day."},
                                  "recorded_by": "Robin"})
    act, form = domain_form(MEETING, moved)
    assert isinstance(act, Act)
    assert isinstance(form, MeetingMoveForm)


def test_a_yes_or_no_and_the_signatures_come_back_as_the_domain_form() -> None:
    answer = run_input_for(DECISION).model_validate({
        "sin": "yes", "rapid_review": "no", "rationale": "Criteria met on the facts.", **SIGNATURES,
        "decided_on": "2026-12-23", "recorded_by": "Dana"})
    _, form = domain_form(DECISION, answer)
    assert isinstance(form, DspDecisionForm)
    assert (form.sin, form.rapid_review) == (True, False)
    assert (form.dsp_la.name, form.dsp_la.deputy) == ("Dana Lee", False)


def test_an_answer_the_domain_form_refuses_is_described_without_its_value() -> None:
    model = run_input_for(DECISION)
    answer = model.model_validate({"sin": "yes", "rapid_review": "yes", "rationale": "CANARY",
                                   "dsp_la": {"name": "C"}, "dsp_health": {"name": "CANARY\nBcc: x"},
                                   "dsp_police": {"name": "Alex"}, "decided_on": "2026-12-23",
                                   "recorded_by": "Dana"})
    with pytest.raises(ValidationError) as caught:
        domain_form(DECISION, answer)
    described = validation_in_words(caught.value, DspDecisionForm)
    assert "“Rationale” needs at least 10 characters." in described
    assert "“Name” of “Director of Nursing (ICB)”" in described
    assert "CANARY" not in described
    assert "dsp_health" not in described
    assert "rationale" not in described


def test_a_choice_half_filled_is_read_and_the_domain_form_names_what_is_missing() -> None:
    # The dashboard's schema requires a choice's required fields (the UI refuses the form without
    # them); an answer that comes without them another way (the API) is still read, and the
    # domain form names what is missing, by title.
    model = run_input_for(MEETING)
    answer = model.model_validate({"record": {"rr_meeting_moved__reason": "CANARY the chair is away",
                                              "rr_meeting_moved__place": None},
                                   "recorded_by": "Robin"})
    with pytest.raises(ValidationError) as caught:
        domain_form(MEETING, answer)
    described = validation_in_words(caught.value, MeetingMoveForm)
    assert "Enter “Meeting date”." in described
    assert "Enter “Start time”." in described
    assert "CANARY" not in described
    moved = schema_of(MEETING)["properties"]["record"]["anyOf"][2]
    assert moved["required"] == ["rr_meeting_moved__meeting_on", "rr_meeting_moved__start_time",
                                 "rr_meeting_moved__place", "rr_meeting_moved__reason"]


@pytest.mark.parametrize("wait", EVERY_WAIT, ids=lambda w: w.name)
def test_a_field_that_may_be_left_empty_is_drawn_as_its_own_input(wait: Wait) -> None:
    # The Prefect UI draws `X | None` as a switch between "X" and "None", set to "None", with no
    # input until a person finds the switch (seen in a real browser on the SIN's form).
    text = str(schema_of(wait))
    assert "'null'" not in text, wait.name
    assert "'default': None" not in text, wait.name


def test_a_choice_left_partly_empty_reaches_the_domain_form_which_names_what_is_missing() -> None:
    notification = run_input_for(CASE.wait_named("notification"))
    properties = schema_of(CASE.wait_named("notification"))["properties"]["record"]["anyOf"][0]["properties"]
    assert properties["sin_submission__national_ref"] == {
        "title": "National reference", "description": "The national notification system's reference.",
        "type": "string"}
    # Sent without a field, with it empty (a text typed and cleared), or with null from the API.
    for empty in ({}, {"sin_submission__national_ref": ""}, {"sin_submission__national_ref": None}):
        record = {"sin_submission__completed_on": "2026-12-23", **empty}
        answer = notification.model_validate({"record": record, "recorded_by": "Alex"})
        with pytest.raises(ValidationError) as caught:
            domain_form(CASE.wait_named("notification"), answer)
        assert [error["loc"] for error in caught.value.errors()] == [("national_ref",)]
    answer = notification.model_validate({"record": {"sin_submission__national_ref": "CSIN-2026-0001",
                                                     "sin_submission__completed_on": "2026-12-23"},
                                          "recorded_by": "Alex"})
    _, form = domain_form(CASE.wait_named("notification"), answer)
    assert form.model_dump() == {"national_ref": "CSIN-2026-0001", "completed_on": date(2026, 12, 23)}

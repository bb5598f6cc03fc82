"""The dashboard's forms are derived from the domain's (issue 7): no field is copied by hand, the
types are loosened so Prefect's own validation cannot quote what was typed, and the flow validates
each answer into the domain form."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel, Field, ValidationError

from models.enums import Agency, Anchor, Role, StepId
from models.forms import AgencyResponseForm, DspDecisionForm, describe_validation_error
from models.processes.case import CASE
from models.processes.rapid_review import RAPID_REVIEW
from models.registry import ItemSpec, Wait
from models.timetable import StepRule, WorkingDaysAfter
from tasks.run_inputs import RECORDED_IN_STORE, domain_form, run_input_for

DECISION = CASE.wait_named("dsp-decision")
RAPID = RAPID_REVIEW.wait_named("rapid-review")


def schema_of(wait: Wait) -> dict[str, dict[str, object]]:
    properties: dict[str, dict[str, object]] = run_input_for(wait).model_json_schema()["properties"]
    return properties


def test_the_decision_form_has_the_domain_fields_with_their_titles_and_descriptions() -> None:
    properties = schema_of(DECISION)
    assert list(properties) == [*DspDecisionForm.model_fields, "recorded_by"]
    assert (properties["sin"]["title"], properties["dsps_present"]["title"]) == ("SIN", "DSPs present")
    for name, info in DspDecisionForm.model_fields.items():
        assert properties[name]["description"] == info.description


def test_the_dashboard_types_carry_no_constraint_that_would_quote_an_answer() -> None:
    properties = schema_of(DECISION)
    for name in ("rationale", "dsps_present"):
        text = str(properties[name])
        assert not any(word in text for word in ("pattern", "minLength", "maxLength", "minItems"))


def test_a_wait_for_several_steps_offers_the_step_and_every_field_any_needs() -> None:
    model = run_input_for(RAPID)
    properties = model.model_json_schema()["properties"]
    required = set(model.model_json_schema()["required"])
    assert set(properties) == {"step", "agency", "completed_on", "reference", "recorded_by"}
    assert required == {"step", "completed_on", "recorded_by"}
    assert properties["completed_on"]["title"] == "Received on / Done on"


def test_a_field_added_to_a_domain_form_appears_on_the_dashboard() -> None:
    class VisitForm(BaseModel):
        completed_on: date = Field(title="Visited on", description="When the visit was made.")
        visitor_role: str = Field(title="Visitor's role", description="Who visited, by role.")

    spec = ItemSpec(StepRule("toy-visit", "Visit", Role.SBU, Anchor.DECISION, "a test", WorkingDaysAfter(1)),
                    VisitForm)
    properties = schema_of(Wait("toy-visit", "Visit", (spec,)))
    assert properties["visitor_role"]["title"] == "Visitor's role"


@pytest.mark.parametrize("wait", [DECISION, CASE.wait_named("sin-submission"), RAPID], ids=lambda w: w.name)
def test_the_placeholder_meets_the_form_and_says_nothing(wait: Wait) -> None:
    answer = run_input_for(wait).placeholder()
    run_input_for(wait).model_validate(answer)
    assert answer["recorded_by"] == "sbu"
    assert all(value in (RECORDED_IN_STORE, "sbu", False, [], "2000-01-01") or value in wait.steps
               for value in answer.values())


def test_an_answer_is_validated_into_its_domain_form() -> None:
    model = run_input_for(RAPID)
    answer = model.model_validate({"step": "rr-agency-responses", "agency": "police",
                                   "completed_on": "2026-12-23", "recorded_by": "Robin"})
    spec, form = domain_form(RAPID, answer)
    assert spec.step == StepId.RR_AGENCY_RESPONSES
    assert form == AgencyResponseForm(agency=Agency.POLICE, completed_on=date(2026, 12, 23))


def test_an_answer_the_domain_form_refuses_is_described_without_its_value() -> None:
    model = run_input_for(DECISION)
    answer = model.model_validate({"sin": True, "rapid_review": True, "rationale": "CANARY",
                                   "dsps_present": ["CANARY-NAME"], "decided_on": "2026-12-23",
                                   "recorded_by": "Dana"})
    with pytest.raises(ValidationError) as caught:
        domain_form(DECISION, answer)
    described = describe_validation_error(caught.value)
    assert "rationale" in described
    assert "dsps_present" in described
    assert "CANARY" not in described

"""The forms: the issue's referral, every impossible combination, and no value ever echoed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from models.enums import AbuseOrNeglect, Agency, Category, Role
from models.forms import (
    SIGNATURE_FIELDS,
    ActionForm,
    ActionProgressForm,
    AgencyResponseForm,
    Child,
    DspDecisionForm,
    MeetingHeldForm,
    MeetingMoveForm,
    PlannedPublicationForm,
    PublicationForm,
    RapidReviewOutcomeForm,
    Referral,
    SinSubmissionForm,
    StepCompletionForm,
    describe_validation_error,
    parse_referral,
    store_only_fields,
)
from models.processes import StepId
from tests.conftest import STEP_FORMS

NOW = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
CANARY = "CANARY-XYZ-123"

# The referral example the procedure's first specification gave, verbatim.
ISSUE_EXAMPLE = """
{"referring_agency": "police", "external_ref": "POL-2026-1234",
 "category": "serious-harm", "abuse_or_neglect": "suspected",
 "incident_date": "2026-12-20", "la_aware_date": "2026-12-22",
 "referred_at": "2026-12-23T10:15:00+00:00",
 "children": [{"la_record_id": "LA-000123", "age_years": 7, "looked_after": false, "care_leaver": false}],
 "agencies_involved": ["police", "health", "children-social-care", "education"]}
"""

Data = dict[str, Any]


def example() -> Data:
    data: Data = json.loads(ISSUE_EXAMPLE)
    return data


def with_canaries() -> Data:
    """The issue's example with a canary planted in every free identifier it has."""
    data = example()
    data["external_ref"] = CANARY
    data["children"][0]["la_record_id"] = CANARY
    return data


def child(n: int = 0, **changes: Any) -> Data:
    return {"la_record_id": f"{CANARY}-{n}", "age_years": 7, "looked_after": False,
            "care_leaver": False, **changes}


def refusal(data: Data, *, now: datetime = NOW) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_referral(data, now=now)
    return describe_validation_error(caught.value)


# -- the issue's example ----------------------------------------------------------------------------

def test_the_issue_example_is_accepted() -> None:
    referral = parse_referral(example(), now=NOW)
    assert referral.referring_agency is Agency.POLICE
    assert referral.external_ref == "POL-2026-1234"
    assert referral.category is Category.SERIOUS_HARM
    assert referral.abuse_or_neglect is AbuseOrNeglect.SUSPECTED
    assert referral.incident_date == date(2026, 12, 20)
    assert referral.la_aware_date == date(2026, 12, 22)
    assert referral.referred_at == datetime(2026, 12, 23, 10, 15, tzinfo=UTC)
    assert referral.referred_on == date(2026, 12, 23)
    assert referral.children == [Child(la_record_id="LA-000123", age_years=7, looked_after=False,
                                       care_leaver=False)]
    assert referral.agencies_involved == [Agency.POLICE, Agency.HEALTH, Agency.CHILDREN_SOCIAL_CARE,
                                          Agency.EDUCATION]
    facts = referral.facts()
    assert facts.category is Category.SERIOUS_HARM
    assert facts.abuse_or_neglect is AbuseOrNeglect.SUSPECTED
    assert not facts.looked_after_child
    assert not facts.care_leaver


def test_the_referral_is_frozen() -> None:
    referral = parse_referral(example(), now=NOW)
    with pytest.raises(ValidationError):
        referral.category = Category.DEATH  # type: ignore[misc]


def test_validation_needs_the_current_time() -> None:
    with pytest.raises(ValidationError) as caught:
        Referral.model_validate(example())
    assert "current time" in describe_validation_error(caught.value)


def test_facts_gather_every_childs_flags() -> None:
    data = example()
    data["category"] = "death"
    data["children"] = [child(0, age_years=16, looked_after=True), child(1, age_years=20, care_leaver=True),
                        child(2)]
    facts = parse_referral(data, now=NOW).facts()
    assert facts.category is Category.DEATH
    assert facts.looked_after_child
    assert facts.care_leaver


# -- combinations at the edge that are possible --------------------------------------------------------

Mutation = Callable[[Data], None]


def set_(**changes: Any) -> Mutation:
    def apply(data: Data) -> None:
        data.update(changes)
    return apply


def set_child(**changes: Any) -> Mutation:
    def apply(data: Data) -> None:
        data["children"][0].update(changes)
    return apply


ACCEPTED: dict[str, Mutation] = {
    "incident-today": set_(incident_date="2026-12-23", la_aware_date="2026-12-23"),
    "incident-aware-referred-same-day": set_(incident_date="2026-12-23", la_aware_date="2026-12-23",
                                             referred_at="2026-12-23T00:00:00+00:00"),
    "referred-within-clock-skew": set_(referred_at="2026-12-23T12:05:00+00:00"),
    "referred-in-another-offset": set_(referred_at="2026-12-23T12:15:00+01:00"),  # 11:15 UTC
    "la-aware-after-referral": set_(la_aware_date="2026-12-23", referred_at="2026-12-22T09:00:00+00:00"),
    "four-children": set_(children=[child(n) for n in range(4)]),
    "care-leaver-aged-24": set_child(age_years=24, care_leaver=True),
    "care-leaver-aged-18": set_child(age_years=18, care_leaver=True),
    "looked-after-aged-17": set_child(age_years=17, looked_after=True),
    "newborn": set_child(age_years=0),
    "every-agency": set_(agencies_involved=[agency.value for agency in Agency]),
    "near-miss": set_(category="near-miss", abuse_or_neglect="not-suspected"),
    "death-known": set_(category="death", abuse_or_neglect="known"),
}


@pytest.mark.parametrize("mutate", list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_possible_combinations_are_accepted(mutate: Mutation) -> None:
    data = example()
    mutate(data)
    parse_referral(data, now=NOW)


def test_future_is_judged_by_the_london_date() -> None:
    # 23:30 UTC on 1 July is already 2 July in London (BST): an incident on 2 July is not future.
    now = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    data = example()
    data.update(incident_date="2026-07-02", la_aware_date="2026-07-02",
                referred_at="2026-07-01T23:10:00+00:00")  # 00:10 BST on 2 July
    referral = parse_referral(data, now=now)
    assert referral.referred_on == date(2026, 7, 2)


def test_referral_before_incident_is_judged_by_the_london_date() -> None:
    now = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    data = with_canaries()
    data.update(incident_date="2026-07-02", la_aware_date="2026-07-02",
                referred_at="2026-07-01T22:30:00+00:00")  # 23:30 BST on 1 July
    message = refusal(data, now=now)
    assert "referred_at is before incident_date" in message
    assert CANARY not in message


# -- impossible combinations: refused, naming the field, echoing nothing -------------------------------

def add_extra(data: Data) -> None:
    data["child_name"] = CANARY


def add_extra_with_unsafe_key(data: Data) -> None:
    data[CANARY] = "x"


def add_extra_to_child(data: Data) -> None:
    data["children"][0]["address"] = CANARY


def duplicate_child(data: Data) -> None:
    data["children"] = [child(1), child(1)]


REFUSED: dict[str, tuple[Mutation, str]] = {
    "aware-before-incident": (set_(la_aware_date="2026-12-19"), "la_aware_date is before incident_date"),
    "referred-before-incident": (set_(incident_date="2026-12-21", la_aware_date="2026-12-22",
                                      referred_at="2026-12-20T23:59:59+00:00"),
                                 "referred_at is before incident_date"),
    "incident-in-future": (set_(incident_date="2026-12-24", la_aware_date="2026-12-24"),
                           "incident_date is in the future"),
    "aware-in-future": (set_(la_aware_date="2026-12-24"), "la_aware_date is in the future"),
    "referred-in-future": (set_(referred_at="2026-12-23T12:05:01+00:00"), "referred_at is in the future"),
    "referred-next-day": (set_(referred_at="2026-12-24T09:00:00+00:00"), "referred_at is in the future"),
    "referred-naive": (set_(referred_at="2026-12-23T10:15:00"), "referred_at: Input should have timezone"),
    "care-leaver-over-24": (set_child(age_years=25, care_leaver=True), "children.0.age_years"),
    "looked-after-over-17": (set_child(age_years=18, looked_after=True),
                             "children.0: a looked-after child is at most 17"),
    "neither-flag-over-17": (set_child(age_years=18), "children.0: only a care leaver"),
    "both-flags": (set_child(age_years=16, looked_after=True, care_leaver=True),
                   "children.0: a child cannot be both looked-after and a care leaver"),
    "negative-age": (set_child(age_years=-1), "children.0.age_years"),
    "unknown-referring-agency": (set_(referring_agency=CANARY), "referring_agency: Input should be"),
    "unknown-involved-agency": (set_(agencies_involved=["police", CANARY]), "agencies_involved.1"),
    "unknown-category": (set_(category=CANARY), "category: Input should be"),
    "unknown-abuse-or-neglect": (set_(abuse_or_neglect=CANARY), "abuse_or_neglect: Input should be"),
    "no-agencies": (set_(agencies_involved=[]), "agencies_involved"),
    "duplicate-agency": (set_(agencies_involved=["police", "health", "police"]),
                         "agencies_involved: an agency appears twice"),
    "extra-key": (add_extra, "child_name: unexpected field"),
    "extra-key-unsafe-name": (add_extra_with_unsafe_key, "<field>: unexpected field"),
    "extra-key-in-child": (add_extra_to_child, "children.0.address: unexpected field"),
    "no-children": (set_(children=[]), "children: List should have at least 1 item"),
    "five-children": (set_(children=[child(n) for n in range(5)]), "children: List should have at most 4"),
    "duplicate-child": (duplicate_child, "children: the same la_record_id appears twice"),
    "bad-external-ref": (set_(external_ref=f"{CANARY} Jane Smith"), "external_ref: String should match"),
    "bad-la-record-id": (set_child(la_record_id=f"{CANARY} 1 High St"), "children.0.la_record_id"),
    "missing-category": (lambda data: data.pop("category"), "category: Field required"),
    "bad-incident-date": (set_(incident_date=f"{CANARY}"), "incident_date: Input should be a valid date"),
    "children-not-a-list": (set_(children={CANARY: child()}), "children: Input should be a valid list"),
}


@pytest.mark.parametrize(("mutate", "expected"), list(REFUSED.values()), ids=list(REFUSED))
def test_impossible_combinations_are_refused_naming_the_field(mutate: Mutation, expected: str) -> None:
    data = with_canaries()
    mutate(data)
    message = refusal(data)
    assert expected in message
    assert "CANARY" not in message
    assert "Jane" not in message
    assert "High St" not in message
    assert "\n" not in message


def test_several_faults_are_all_named() -> None:
    data = with_canaries()
    data.update(category=CANARY, referring_agency=CANARY, note=CANARY)
    message = refusal(data)
    assert "category:" in message
    assert "referring_agency:" in message
    assert "note: unexpected field" in message
    assert CANARY not in message


FIELDS = sorted(example())


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from([*FIELDS, "children.0.la_record_id", "children.0.age_years", "extra"]),
    canary=st.from_regex(r"\ACANARY[A-Z0-9]{6,12}\Z"),
    shape=st.sampled_from(["plain", "spaced", "list", "dict"]),
)
def test_no_refusal_ever_echoes_a_submitted_value(field: str, canary: str, shape: str) -> None:
    value: Any = {
        "plain": canary,
        "spaced": f"{canary} {canary}",
        "list": [canary],
        "dict": {"value": canary},
    }[shape]
    data = with_canaries()
    if field.startswith("children.0."):
        data["children"][0][field.rsplit(".", 1)[1]] = value
    elif field == "extra":
        data["extra"] = value
    else:
        data[field] = value
    try:
        parse_referral(data, now=NOW)
    except ValidationError as error:
        message = describe_validation_error(error)
        assert canary not in message
        assert "CANARY" not in message
        assert message
    else:
        # Only the free identifiers take a bare token like this, and they are allowed to.
        assert field in ("external_ref", "children.0.la_record_id")
        assert shape == "plain"


# -- the human steps ------------------------------------------------------------------------------------

def decision(**changes: Any) -> Data:
    return {"sin": True, "rapid_review": True,
            "rationale": "Abuse is suspected and the threshold is met.",
            "dsp_la": {"name": "A. Officer"}, "dsp_health": {"name": "B. Nurse"},
            "dsp_police": {"name": "C. Inspector", "deputy": True}, "decided_on": "2026-12-24",
            **changes}


def test_a_dsp_decision_is_accepted_signed_once_by_each_role() -> None:
    form = DspDecisionForm.model_validate(decision())
    assert form.sin
    assert form.rapid_review
    assert form.decided_on == date(2026, 12, 24)
    assert [(role, signed.name, signed.deputy) for role, signed in form.signatures()] == [
        (Role.DSP_LA, "A. Officer", False), (Role.DSP_HEALTH, "B. Nurse", False),
        (Role.DSP_POLICE, "C. Inspector", True)]
    # Each role is a field of its own: none can be left out, and none can sign twice.
    assert set(SIGNATURE_FIELDS.values()) <= set(DspDecisionForm.model_fields)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"rationale": "CANARY"}, "rationale: String should have at least 10 characters"),
        ({"rationale": "CANARY " * 600}, "rationale: String should have at most 4000 characters"),
        ({"dsp_police": None}, "dsp_police: Input should be"),
        ({"dsp_la": {"name": "CANARY", "role": "dsp-police"}}, "dsp_la.role: unexpected field"),
        ({"dsp_health": {"name": "CANARY\nBcc: x"}}, "dsp_health.name"),
        ({"dsp_health": {"name": "<CANARY>"}}, "dsp_health.name"),
        ({"sin": "CANARY"}, "sin: Input should be a valid boolean"),
        ({"decided_on": "CANARY"}, "decided_on"),
        ({"minutes": "CANARY"}, "minutes: unexpected field"),
    ],
    ids=["rationale-short", "rationale-long", "no-police-dsp", "a-role-twice", "dsp-newline", "dsp-markup",
         "sin-not-bool", "decided-on-not-date", "extra"],
)
def test_an_impossible_dsp_decision_is_refused(changes: Data, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DspDecisionForm.model_validate(decision(**changes))
    message = describe_validation_error(caught.value)
    assert expected in message
    assert "CANARY" not in message


def test_every_step_has_a_form() -> None:
    assert set(STEP_FORMS) == set(StepId)
    assert STEP_FORMS[StepId.DSP_DECISION] is DspDecisionForm
    assert STEP_FORMS[StepId.SIN_SUBMISSION] is SinSubmissionForm
    assert STEP_FORMS[StepId.RR_AGENCY_RESPONSES] is AgencyResponseForm
    assert STEP_FORMS[StepId.RR_MEETING] is MeetingHeldForm
    assert STEP_FORMS[StepId.CSPR_PUBLICATION] is PublicationForm


def test_free_text_and_names_stay_in_the_store() -> None:
    assert store_only_fields(DspDecisionForm) == {"rationale", "dsp_la", "dsp_health", "dsp_police"}
    assert store_only_fields(RapidReviewOutcomeForm) == {
        "immediate_actions", "learning", "rationale", "dsp_la", "dsp_health", "dsp_police"}
    assert store_only_fields(STEP_FORMS[StepId.CSPR_REVIEWER_APPOINTED]) == {"reviewers"}
    assert store_only_fields(STEP_FORMS[StepId.CSPR_FAMILY_ENGAGEMENT]) == {"reason"}
    assert store_only_fields(SinSubmissionForm) == set()


# Names the Prefect UI's form cannot submit (it validates its own values as a JSON Schema).
JSON_SCHEMA_KEYWORDS = {"type", "items", "required", "enum", "properties", "pattern", "minimum", "maximum",
                        "description", "not", "const", "format", "default", "title", "examples",
                        "minLength", "maxLength", "anyOf", "allOf", "oneOf", "additionalProperties", "ref"}


def test_no_form_field_is_named_like_a_json_schema_keyword() -> None:
    forms: set[type[BaseModel]] = {*STEP_FORMS.values(), ActionForm, ActionProgressForm, MeetingMoveForm,
                                   PlannedPublicationForm}
    for form in forms:
        assert not set(form.model_fields) & JSON_SCHEMA_KEYWORDS, form.__name__


def test_the_step_forms_accept_their_input() -> None:
    sin = SinSubmissionForm.model_validate({"national_ref": "SIN/2026/0042", "completed_on": "2026-12-30"})
    assert sin.completed_on == date(2026, 12, 30)
    done = StepCompletionForm.model_validate({"completed_on": "2027-01-13"})
    assert done.reference is None
    response = AgencyResponseForm.model_validate({"agency": "health", "completed_on": "2027-01-08"})
    assert response.agency is Agency.HEALTH


@pytest.mark.parametrize(
    ("form", "data", "expected"),
    [
        (SinSubmissionForm, {"national_ref": "CANARY 42", "completed_on": "2026-12-30"}, "national_ref"),
        (SinSubmissionForm, {"completed_on": "2026-12-30"}, "national_ref: Field required"),
        (StepCompletionForm, {"completed_on": "2027-01-13", "reference": "CANARY <b>"}, "reference"),
        (StepCompletionForm, {"completed_on": "2027-01-13", "notes": "CANARY"}, "notes: unexpected field"),
        (AgencyResponseForm, {"agency": "CANARY", "completed_on": "2027-01-08"}, "agency: Input should be"),
    ],
    ids=["sin-ref", "sin-missing", "reference", "extra", "agency"],
)
def test_impossible_step_input_is_refused(
    form: type[SinSubmissionForm | StepCompletionForm | AgencyResponseForm], data: Data, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        form.model_validate(data)
    message = describe_validation_error(caught.value)
    assert expected in message
    assert "CANARY" not in message


def test_describing_an_error_does_not_mutate_the_input() -> None:
    data = with_canaries()
    data["category"] = CANARY
    before = copy.deepcopy(data)
    refusal(data)
    assert data == before


def test_clock_skew_is_five_minutes() -> None:
    data = example()
    data["referred_at"] = (NOW + timedelta(minutes=5)).isoformat()
    parse_referral(data, now=NOW)
    data["referred_at"] = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    assert "referred_at is in the future" in refusal(data)

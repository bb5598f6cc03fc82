"""The desk's refusals (`deployments.web.refusals`): the domain's words, each at the input it is
about, with the input's own title and hint."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from deployments.web.forms import referral_form
from deployments.web.refusals import from_refusal, from_validation
from models.forms import Referral


def test_a_domain_forms_problems_are_said_at_their_inputs() -> None:
    form = referral_form(today=date(2027, 4, 16))
    with pytest.raises(ValidationError) as caught:
        Referral.model_validate({"external_ref": "a b", "category": "x", "children": [{"la_record_id": "1"}]})
    problems = from_validation(caught.value, form)
    assert problems.at["referring_agency"] == ["Choose “Referring agency”"]
    assert problems.at["incident_date"] == ["Enter “Incident date”"]
    assert problems.at["category"] == ["Choose “Category” from the options given"]
    assert problems.at["children.0.age_years"] == ["Enter “Age in years”"]
    reference = form.input("external_ref")
    assert reference is not None
    assert reference.hint
    assert problems.at["external_ref"] == [f"“Referring agency's reference” holds characters it cannot "
                                           f"hold: {reference.hint}"]
    assert not problems.general


def test_a_rules_refusal_is_said_at_the_field_it_names_with_titles() -> None:
    form = referral_form(today=date(2027, 4, 16))
    named = from_refusal("la_aware_date is before incident_date (2027-04-16)", form)
    assert named.at == {"la_aware_date": ["“Local authority aware on” is before “Incident date” "
                                          "(Fri 16 Apr 2027)"]}
    assert not named.general
    whole = from_refusal("the case is not waiting for a referral", form)
    assert whole.general == ["The case is not waiting for a referral"]
    assert not whole.at

"""How a field's annotation is read (`models.choices.field_shape`), and how a domain form's problems
and a rule's refusals are put into words (`models.refusals`), the words both the dashboard and the
desk show."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

import pytest
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from models.choices import FieldShape, base_type, field_shape, is_list
from models.refusals import problem_in_words, rule_in_words, validation_in_words


def test_a_field_is_unwrapped_once_with_its_constraints_and_its_items() -> None:
    annotation = Annotated[list[Annotated[str, MinLen(3)]], MaxLen(4)] | None
    shape = field_shape(annotation, ("own",))
    assert shape.optional
    assert shape.base == list[Annotated[str, MinLen(3)]]
    assert shape.metadata == ("own", MaxLen(4))
    assert shape.item == FieldShape(str, False, (MinLen(3),))
    assert shape.one is str
    assert base_type(annotation) is str
    assert is_list(annotation)

    plain = Annotated[date, "day"]
    assert field_shape(plain) == FieldShape(date, False, ("day",))
    assert field_shape(plain).item is None
    assert base_type(plain) is date
    assert not is_list(plain)

    # Two types besides None are no one thing: left as they are, and not a list.
    either = int | str | None
    assert field_shape(either) == FieldShape(either, True, ())
    assert base_type(either) == either
    assert not is_list(either)
    assert is_list(Annotated[list[int] | None, "x"])
    assert base_type(list[Annotated[list[int], "inner"]]) is int


class _Colour(StrEnum):
    RED = "red"


class _Director(BaseModel):
    name: str = Field(title="Name", min_length=2)


class _Asked(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: _Colour
    decided_on: date = Field(title="Decided on")
    reference: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")] = "x"
    director: _Director | None = None

    @model_validator(mode="after")
    def _not_after_the_day(self) -> Self:
        if self.decided_on > date(2027, 4, 16):
            raise ValueError("decided_on is after 2027-04-16")
        return self


def _problems(values: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Asked.model_validate(values)
    return caught.value


def test_each_problem_names_its_field_by_title_and_says_choose_or_enter() -> None:
    said = validation_in_words(_problems({"director": {"name": "A"}, "extra": 1}), _Asked)
    assert said == ("Choose “Colour”. Enter “Decided on”. “Name” of “Director” needs at least 2 "
                    "characters. The form sent a field it does not have; reload the page and try again.")


def test_a_check_across_fields_is_said_with_titles_and_dates_spelt_out() -> None:
    said = validation_in_words(_problems({"colour": "red", "decided_on": "2027-05-01"}), _Asked)
    assert said == "“Decided on” is after Fri 16 Apr 2027."


def test_a_problem_at_a_field_the_caller_places_takes_its_title_choice_and_hint() -> None:
    error = _problems({"colour": "red", "decided_on": "2027-04-01", "reference": "A1"})
    [mismatch] = error.errors(include_input=False, include_url=False)
    titles = {"decided_on": "Decided on"}
    assert (problem_in_words(mismatch, titles, at=("Reference",))
            == "“Reference” holds characters it cannot hold")
    assert (problem_in_words(mismatch, titles, at=("Reference",), hint="Small letters only.")
            == "“Reference” holds characters it cannot hold: Small letters only.")
    missing = _problems({"decided_on": "2027-04-01"}).errors(include_input=False, include_url=False)[0]
    assert problem_in_words(missing, titles, at=("Colour",)) == "Enter “Colour”"
    assert problem_in_words(missing, titles, at=("Colour",), choice=True) == "Choose “Colour”"
    rule = _problems({"colour": "red", "decided_on": "2027-05-01"}).errors(include_input=False,
                                                                            include_url=False)[0]
    assert problem_in_words(rule, titles) == "“Decided on” is after Fri 16 Apr 2027"
    assert problem_in_words(rule, titles, at=("When",)) == "“When”: “Decided on” is after Fri 16 Apr 2027"


def test_a_rules_refusal_ends_with_a_full_stop_unless_shown_alone() -> None:
    titles = {"decided_on": "Decided on", "due": "Due"}
    assert rule_in_words("due is before decided_on (2027-04-16)", titles) == (
        "“Due” is before “Decided on” (Fri 16 Apr 2027)")
    assert rule_in_words("due is in the past", titles) == "“Due” is in the past."
    assert rule_in_words("due is in the past", titles, full_stop=False) == "“Due” is in the past"
    assert rule_in_words("the day 2027-02-30 is not_a_field", titles) == "The day 2027-02-30 is not_a_field."

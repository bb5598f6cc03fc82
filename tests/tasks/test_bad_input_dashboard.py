"""Bad input typed into the dashboard's forms, at the level of the forms the
flows suspend with (`tasks.run_inputs`), without a server: the loosened form takes any text, so
the answer reaches the flow and never Prefect's own check (which quotes what was typed); the domain
form then refuses it naming the field and not the value; and the form asked again carries that
reason (`models.descriptions.form_markdown`, as `flows.waits.run_waits` passes it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.descriptions import form_markdown
from models.errors import SbuError
from models.forms import describe_validation_error, parse_referral
from models.processes import BUILTIN_PROCESSES
from models.refusals import validation_in_words
from models.registry import Choice, Wait
from tasks.run_inputs import NO, RECORD, RECORDED_BY, YES, _prefix, domain_form, recorded_by, run_input_for
from tasks.service import CaseService
from tests.bad_inputs import (
    INVISIBLE,
    LINE_BREAKS,
    Kind,
    Slot,
    Tally,
    bad_input,
    bad_value,
    echoes,
    example_of,
    leaves,
    put,
    valid_answer,
)
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL
from tests.tasks.test_bad_input_store import OFFICER

TALLY = Tally("dashboard")
# Every choice of every wait, with the slots of its form that the dashboard asks as plain text.
CHOICES: list[tuple[Wait, Choice]] = [(wait, choice) for process in BUILTIN_PROCESSES
                                      for wait in process.waits for choice in wait.choices]
TEXT_SLOTS: list[tuple[Wait, Choice, Slot]] = [
    (wait, choice, slot) for wait, choice in CHOICES
    for slot in (Slot(choice.form, path) for path in leaves(valid_answer(choice.form)))
    if slot.kind in (Kind.FREE, Kind.LINE, Kind.IDENT)]
CLASSES = ("injection", "unicode-digits-and-look-alikes", "invisible-and-bidi", "huge-payloads", "crlf")


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    TALLY.record()


def dashboard_answer(wait: Wait, choice: Choice, values: dict[str, Any], *, by: str = "Robin Hale") -> Any:
    """`values` of `choice`'s domain form as the dashboard sends them: a required yes-or-no as
    "yes" or "no", a choice's fields under its prefix."""
    fields = choice.form.model_fields
    loose = {name: (YES if value else NO) if isinstance(value, bool) and fields[name].is_required() else value
             for name, value in values.items()}
    if len(wait.choices) > 1:
        loose = {RECORD: {f"{_prefix(choice)}{name}": value for name, value in loose.items()}}
    return run_input_for(wait).model_validate({**loose, RECORDED_BY: by})


def test_every_choice_takes_a_valid_answer() -> None:
    for wait, choice in CHOICES:
        picked, form = domain_form(wait, dashboard_answer(wait, choice, valid_answer(choice.form)))
        assert picked == choice
        assert type(form) is choice.form
    assert len(TEXT_SLOTS) > 30


@pytest.mark.parametrize("what", CLASSES)
@bad_input(25)
@given(data=st.data())
def test_a_refused_dashboard_answer_names_the_field_and_not_the_value(what: str, data: st.DataObject) -> None:
    slots = [slot for _w, _c, slot in TEXT_SLOTS
             if not (what == "injection" and slot.kind in (Kind.FREE, Kind.LINE))]
    slot, value, _keep = data.draw(bad_value(what, slots, strings_only=True), label="bad")
    wait, choice = next((w, c) for w, c, s in TEXT_SLOTS if s == slot)
    # The loosened form takes any text: the answer reaches the flow, not Prefect's own check.
    answer = dashboard_answer(wait, choice, put(valid_answer(choice.form), slot.path, value))
    try:
        domain_form(wait, answer)
    except ValidationError as error:
        described = describe_validation_error(error)
    else:
        TALLY.add(what, accepted_wrongly=True)
        raise AssertionError(f"{slot!r} accepted")
    echoed = echoes(value, described, known=example_of(slot))
    TALLY.add(what, echoed=bool(echoed))
    assert not echoed
    assert slot.field in described
    assert _prefix(choice) not in described  # the domain's field name, as the form's title shows it


@pytest.mark.parametrize("name", [*(f"Robin{mark}Hale" for mark in (*INVISIBLE, *LINE_BREAKS)),
                                  "Robin Hale " * 100_000])
def test_a_recorded_by_with_a_hidden_character_is_refused_without_echo(name: str) -> None:
    wait, choice = CHOICES[0]
    answer = dashboard_answer(wait, choice, valid_answer(choice.form), by=name)
    with pytest.raises(SbuError) as caught:
        recorded_by(answer)
    echoed = echoes(name, str(caught.value), known="Robin")
    TALLY.add("invisible-and-bidi", echoed=bool(echoed))
    assert str(caught.value).startswith("recorded_by: ")
    assert not echoed


def test_the_form_asked_again_gives_the_reason_and_not_the_value(service: CaseService) -> None:
    ref = service.refer(parse_referral(EXAMPLE_REFERRAL, now=EXAMPLE_NOW), actor=OFFICER).case_ref
    state = service.case_view(ref)
    wait, choice = next((w, c) for w, c in CHOICES if w.name == "dsp-decision")
    typed = "Dana\u202eeeL\r\nBcc: someone@attacker.test"
    answer = dashboard_answer(wait, choice, put(valid_answer(choice.form), ("dsp_la", "name"), typed))
    with pytest.raises(ValidationError) as caught:
        domain_form(wait, answer)
    refusal = validation_in_words(caught.value, choice.form)
    markdown = form_markdown(wait, state, refusal)
    # At the top of the form, before its title, naming the field as the form shows it.
    assert markdown.startswith(f"> **Your answer was not recorded.** {refusal}\n")
    assert markdown.index(refusal) < markdown.index(f"## {wait.title}")
    assert "“Name” of “Director of Children's Services (local authority)”" in refusal
    assert "dsp_la" not in markdown
    assert not echoes(typed, markdown, known="Dana")
    TALLY.add("crlf")

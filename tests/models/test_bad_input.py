"""Bad input against the forms themselves: the referral and every step's and
act's form, each class of bad input in every slot it can reach. Each value is refused with an error
naming the field and holding no run of six of its characters, or (free text only) kept exactly as
typed. `tests/bad_inputs.py` holds the catalogue; the store and the CLI are tested on top of this."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from models.errors import MAX_PROBLEMS
from models.fields import EARLIEST_YEAR, LATEST_YEAR
from models.forms import (
    DspDecisionForm,
    Referral,
    describe_validation_error,
    parse_referral,
    store_only_fields,
)
from tests.bad_inputs import (
    FORMS,
    IMPOSSIBLE_DAYS,
    IMPOSSIBLE_MOMENTS,
    INJECTIONS,
    INVISIBLE,
    LINE_BREAKS,
    SLOTS,
    Kind,
    Slot,
    Tally,
    bad_input,
    deep,
    echoes,
    foreign_digits,
    get,
    inserted,
    lookalike,
    put,
    shows,
    slots_of,
    valid_answer,
    wrong_types,
)
from tests.conftest import EXAMPLE_NOW

TALLY = Tally("models")
TEXT = [kind for kind in Kind if kind.is_text]


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    TALLY.record()


def attempt(form: type[BaseModel], data: Any) -> tuple[BaseModel | None, str | None]:
    """The form, or the words of its refusal. Anything but a `ValidationError` propagates: a crash
    is a failure."""
    try:
        if form is Referral:
            return parse_referral(data, now=EXAMPLE_NOW), None
        return form.model_validate(data), None
    except ValidationError as error:
        return None, describe_validation_error(error)


Keep = Callable[[Any], bool]


def never(_stored: Any) -> bool:
    return False


def judge(what: str, slot: Slot, value: Any, *, keep: Keep = never, data: Any = None) -> None:
    """Submit `value` in `slot` of a valid answer: refused naming the field, never echoing the
    value; or accepted only where `keep` approves of what was kept."""
    answer = put(valid_answer(slot.form), slot.path, value) if data is None else data
    model, message = attempt(slot.form, answer)
    if model is None:
        assert message is not None
        echoed = echoes(value, message, known=example(slot))
        TALLY.add(what, echoed=bool(echoed))
        assert not echoed, f"{slot!r}: the error echoes {echoed[:3]}"
        assert slot.field in message, f"{slot!r}: the error does not name the field: {message}"
        assert "\n" not in message
        assert "\r" not in message
        return
    kept = keep(get(model, slot.path))
    TALLY.add(what, accepted_wrongly=not kept)
    assert kept, f"{slot!r} accepted {shows(value)}"


def example(slot: Slot) -> Any:
    return get(valid_answer(slot.form), slot.path)


def test_every_form_has_a_valid_answer_and_every_slot_a_kind() -> None:
    # The refusals below are only about the slot changed if the rest of the answer is valid.
    for form in FORMS:
        model, message = attempt(form, valid_answer(form))
        assert model is not None, f"{form.__name__}: {message}"
    assert {slot.kind for slot in SLOTS} == set(Kind)
    assert len(FORMS) >= 20


@bad_input()
@given(st.data())
def test_injection_strings_are_refused_or_kept_as_typed(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(*TEXT)), label="slot")
    payload = data.draw(st.sampled_from(INJECTIONS), label="payload")
    value = data.draw(st.sampled_from([payload, f"{example(slot)} {payload}", f"{payload}{example(slot)}"]))
    free = slot.kind in (Kind.FREE, Kind.LINE)
    judge("injection", slot, value, keep=lambda stored: free and stored == value.strip())


@bad_input()
@given(st.data())
def test_other_scripts_digits_and_look_alike_letters_are_refused(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(Kind.IDENT, Kind.CHOICE, Kind.DAY, Kind.MOMENT, Kind.COUNT)))
    text = str(example(slot))
    has_digits = any(ch.isdigit() for ch in text)
    how = foreign_digits(text) if has_digits and data.draw(st.booleans()) else lookalike(text)
    value = data.draw(how, label="value")
    assert value != text
    judge("unicode-digits-and-look-alikes", slot, value)


@bad_input()
@given(st.data())
def test_zero_width_right_to_left_and_control_characters_are_refused(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(*TEXT)), label="slot")
    value = data.draw(inserted(str(example(slot)), INVISIBLE, interior=True), label="value")
    judge("invisible-and-bidi", slot, value)


def _impossible_triples() -> st.SearchStrategy[str]:
    def impossible(triple: tuple[int, int, int]) -> bool:
        try:
            date(*triple)
        except ValueError:
            return True
        return not EARLIEST_YEAR <= triple[0] <= LATEST_YEAR

    return st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32)).filter(impossible).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}")


_OUT_OF_RANGE_DAYS = (st.dates(max_value=date(EARLIEST_YEAR - 1, 12, 31))
                      | st.dates(min_value=date(LATEST_YEAR + 1, 1, 1)))
_BAD_DAYS = (st.sampled_from(IMPOSSIBLE_DAYS) | _impossible_triples() | _OUT_OF_RANGE_DAYS.map(date.isoformat)
             | _OUT_OF_RANGE_DAYS | st.datetimes().map(datetime.isoformat)
             | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False))
_BAD_MOMENTS = (st.sampled_from(IMPOSSIBLE_MOMENTS)
                | _OUT_OF_RANGE_DAYS.map(lambda d: f"{d.isoformat()}T12:00:00+00:00")
                | st.integers(-(2**40), 2**40) | st.dates().map(date.isoformat))


@bad_input()
@given(st.data())
def test_impossible_dates_and_iso_variants_are_refused(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(Kind.DAY, Kind.MOMENT)), label="slot")
    value = data.draw(_BAD_DAYS if slot.kind is Kind.DAY else _BAD_MOMENTS, label="value")
    judge("dates", slot, value)


@bad_input()
@given(st.data())
def test_a_referral_dated_in_the_future_or_before_the_children_were_born_is_refused(
        data: st.DataObject) -> None:
    today = EXAMPLE_NOW.date()
    answer = valid_answer(Referral)
    field = data.draw(st.sampled_from(["incident_date", "la_aware_date", "referred_at", "far-past"]))
    if field == "referred_at":
        moment = data.draw(st.datetimes(min_value=EXAMPLE_NOW.replace(tzinfo=None) + timedelta(hours=1),
                                        max_value=datetime(LATEST_YEAR, 12, 31)))
        value: Any = f"{moment.isoformat()}+00:00"
    elif field == "far-past":
        # A child of 7 was not born 10 years before the referral.
        field, value = "incident_date", data.draw(st.dates(date(EARLIEST_YEAR, 1, 1), date(2016, 12, 22)))
        answer["la_aware_date"] = value.isoformat()
        value = value.isoformat()
    else:
        value = data.draw(st.dates(today + timedelta(days=1), date(LATEST_YEAR, 12, 31))).isoformat()
        if field == "incident_date":
            answer["la_aware_date"] = value
    judge("dates", Slot(Referral, (field,)), value, data=put(answer, (field,), value))


def _optional(slot: Slot) -> bool:
    return len(slot.path) == 1 and not slot.form.model_fields[slot.field].is_required()


@bad_input()
@given(st.data())
def test_wrong_types_are_refused(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(SLOTS), label="slot")
    value = data.draw(wrong_types(slot.kind), label="value")
    judge("wrong-types", slot, value,
          keep=lambda stored: value is None and stored is None and _optional(slot))


@bad_input()
@given(st.data())
def test_a_whole_field_of_the_wrong_shape_is_refused(data: st.DataObject) -> None:
    form = data.draw(st.sampled_from(FORMS), label="form")
    field = data.draw(st.sampled_from(sorted(form.model_fields)), label="field")
    current = valid_answer(form)[field]
    shapes = [42, 3.5, "text", {"value": "text"}, [{"value": "text"}]]
    value = data.draw(st.sampled_from([s for s in shapes if type(s) is not type(current)]))
    slot = Slot(form, (field,))
    judge("wrong-types", slot, value)


_KEYS = (st.sampled_from(["extra", "__class__", "__proto__", "$where", "constructor", "case_ref", "id",
                          "recorded_by", "password", "a b", "nom_é", "x" * 200, "", "0"])
         | st.from_regex(r"[a-z_]{1,12}", fullmatch=True))


@bad_input()
@given(st.data())
def test_extra_keys_are_refused_at_every_level(data: st.DataObject) -> None:
    form = data.draw(st.sampled_from(FORMS), label="form")
    answer = valid_answer(form)
    holders: list[tuple[str | int, ...]] = [()]
    holders += [(name,) for name, value in answer.items() if isinstance(value, dict)]
    holders += [(name, 0) for name, value in answer.items() if isinstance(value, list) and value
                and isinstance(value[0], dict)]
    at = data.draw(st.sampled_from(holders), label="at")
    target = get(answer, at)
    key = data.draw(_KEYS.filter(lambda k: k not in target), label="key")
    value = data.draw(st.text(min_size=6, max_size=40) | st.integers(10**6, 10**9), label="value")
    target[key] = value
    model, message = attempt(form, answer)
    assert model is None
    assert message is not None
    echoed = echoes(value, message)
    TALLY.add("extra-keys", echoed=bool(echoed))
    assert not echoed
    assert "unexpected field" in message


@pytest.mark.parametrize("form", FORMS, ids=[form.__name__ for form in FORMS])
def test_a_missing_or_null_required_field_is_named(form: type[BaseModel]) -> None:
    for name, info in form.model_fields.items():
        if not info.is_required():
            continue
        for answer in ({k: v for k, v in valid_answer(form).items() if k != name},
                       put(valid_answer(form), (name,), None)):
            model, message = attempt(form, answer)
            TALLY.add("wrong-types", accepted_wrongly=model is not None)
            assert model is None
            assert message is not None
            assert message.startswith(f"{name}: ")


@pytest.mark.parametrize("answer", [None, [], "referral", 42, [{"external_ref": "X"}], True])
def test_an_answer_that_is_not_an_object_is_refused(answer: Any) -> None:
    for form in FORMS:
        model, message = attempt(form, answer)
        TALLY.add("wrong-types", accepted_wrongly=model is not None)
        assert model is None
        assert message


_HUGE_CHARS = st.sampled_from(["A", "7", "é", "<", " ", "a1", "'; --", "\u0660"])


@bad_input(40)
@given(st.data())
def test_megabyte_strings_are_refused(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(*TEXT)), label="slot")
    unit = data.draw(_HUGE_CHARS, label="unit")
    size = data.draw(st.integers(1, 2), label="MB") * 1024 * 1024
    value = str(example(slot)) + unit * (size // len(unit))
    # Trailing spaces are stripped (and the rest is what was meant); anything else is refused.
    judge("huge-payloads", slot, value, keep=lambda stored: unit.isspace() and stored == value.strip())


_LISTS = [(form, name) for form in FORMS for name, value in valid_answer(form).items()
          if isinstance(value, list)]


@bad_input(40)
@given(st.data())
def test_long_lists_and_deep_nesting_are_refused(data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="long list"):
        form, name = data.draw(st.sampled_from(_LISTS), label="list")
        item = valid_answer(form)[name][0]
        length = data.draw(st.sampled_from([50, 1000, 20_000]), label="length")
        judge("huge-payloads", Slot(form, (name,)), [item] * length)
    else:
        slot = data.draw(st.sampled_from(SLOTS), label="slot")
        depth = data.draw(st.sampled_from([100, 10_000, 50_000]), label="depth")
        judge("huge-payloads", slot, deep(depth, as_list=data.draw(st.booleans())))


def test_thousands_of_unknown_fields_are_one_short_refusal() -> None:
    answer = valid_answer(Referral)
    answer.update({f"field_{n}": f"value-{n:08d}" for n in range(20_000)})
    model, message = attempt(Referral, answer)
    TALLY.add("huge-payloads", accepted_wrongly=model is not None)
    assert model is None
    assert message is not None
    assert message.count("unexpected field") == MAX_PROBLEMS
    assert message.endswith(f"and {20_000 - MAX_PROBLEMS} more problems")
    assert len(message) < 1000


@bad_input()
@given(st.data())
def test_line_breaks_are_refused_in_every_one_line_field(data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(slots_of(*TEXT)), label="slot")
    value = data.draw(inserted(str(example(slot)), LINE_BREAKS, interior=True), label="value")
    # Paragraphs are allowed in a person's own words, which stay in the case store and never
    # reach an email (let alone its header).
    stays = slot.kind is Kind.FREE and slot.field in store_only_fields(slot.form)
    judge("crlf", slot, value, keep=lambda stored: stays and stored == value.strip())


def test_every_multi_line_field_stays_in_the_store() -> None:
    for slot in slots_of(Kind.FREE):
        assert slot.field in store_only_fields(slot.form), slot


@pytest.mark.parametrize("value", ["Dana Lee\u200b", "\u202eeeL anaD", "Dana\x00Lee", "Dana\tLee",
                                   "Dana\u2028Lee", "\ufeffDana Lee", "Dana\x1b[2JLee"])
def test_a_signature_with_a_hidden_character_names_the_role(value: str) -> None:
    judge("invisible-and-bidi", Slot(DspDecisionForm, ("dsp_la", "name")), value)

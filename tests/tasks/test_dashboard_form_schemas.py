"""The dashboard's form of every wait for one case, as Prefect stores it and its UI draws it (the
schema `suspend_flow_run` saves, built the way Prefect builds it), checked over every wait of the
procedure: a required field is required (the UI writes "(Optional)" after the label of any field
its parent does not list as required, and Prefect's own check, which the UI runs before it
resumes anything, refuses the form without it); choices are offered by their titles, narrowed to
the case; a step already done is not offered; a form asked again fills in what was chosen, never
what was typed; and `sbu`'s wake-up answer meets every form."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema
from prefect.utilities.schema_tools.validation import build_error_obj, is_valid_schema, validate
from pydantic import BaseModel

from models.choices import base_type
from models.enums import AbuseOrNeglect, Agency, Anchor, CasePath, CaseStatus, Category, StepState
from models.forms import ActionProgressForm
from models.processes import BUILTIN_PROCESSES
from models.processes.case import CASE
from models.processes.cspr import CSPR
from models.registry import Process, Step, Wait, choice_name
from models.rules import CaseFacts
from models.state import CaseState, DecisionSummary, ItemState
from tasks.run_inputs import (
    RECORD,
    RECORDED_BY,
    RECORDED_IN_STORE,
    WAKE_UP_NAME,
    case_form,
    domain_form,
    is_wake_up,
    run_input_for,
    wake_up_answer,
)

SECTIONS = ("chronology", "lessons-learned", "agency-analysis")
WAITS = [(process, wait) for process in BUILTIN_PROCESSES for wait in process.waits]
IDS = [wait.name for _, wait in WAITS]


def open_case(process: Process, wait: Wait, *, done: tuple[str, ...] = ()) -> CaseState:
    """A case on the SIN-and-Rapid-Review path, police and health involved, a CSPR commissioned,
    with every item `wait` answers open (one item per agency, action a1 owed by the police), except
    the steps `done`."""
    items = []
    for number, spec in enumerate(wait.items):
        subjects = [""] if spec.subject_field is None else (
            ["a1"] if spec.subject_field == "action" else ["police", "health"])
        for subject in subjects:
            items.append(ItemState(
                step=spec.step, subject=subject, process=process.id, title=spec.rule.title,
                state=StepState.DONE if spec.step in done else StepState.OPEN, anchor=spec.rule.anchor,
                anchor_on=date(2027, 1, 4), due=date(2027, 2, 1 + number), rule=f"rule text {number}",
                completed_on=date(2027, 1, 20) if spec.step in done else None,
                agency={"police": Agency.POLICE, "a1": Agency.POLICE, "health": Agency.HEALTH}.get(subject)))
    return CaseState(
        case_ref="SR-2027-0001", status=CaseStatus.IN_PROGRESS, path=CasePath.SIN_AND_RAPID_REVIEW,
        category=Category.SERIOUS_HARM,
        facts=CaseFacts(category=Category.SERIOUS_HARM, abuse_or_neglect=AbuseOrNeglect.SUSPECTED,
                        looked_after_child=False, care_leaver=False),
        referred_at=datetime(2027, 1, 4, 10, 0, tzinfo=UTC),
        anchors={Anchor.REFERRAL_RECEIVED: date(2027, 1, 4), Anchor.RR_OUTCOME: date(2027, 1, 18),
                 Anchor.CSPR_COMMISSIONED: date(2027, 1, 18)},
        steps=tuple(items), agencies=(Agency.POLICE, Agency.HEALTH),
        decision=DecisionSummary(True, True, "an officer"))


def stored_schema(wait: Wait, state: CaseState, refused: BaseModel | None = None) -> dict[str, Any]:
    """The schema Prefect stores for the wait's form (`RunInput.save`), description and all."""
    form = case_form(wait, state, imr_sections=SECTIONS, refused=refused).with_initial_data(description="x")
    schema: dict[str, Any] = create_v2_schema(form.__name__, model_base=form)
    is_valid_schema(schema)
    return schema


Field = tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]


def fields(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[Field]:
    """Every field the UI draws: its path, itself and its parent (whose `required` it is read from),
    into each choice's tab and each nested form."""
    for name, prop in schema.get("properties", {}).items():
        yield (*path, name), prop, schema
        for variant in prop.get("anyOf", []):
            yield from fields(variant, (*path, name, variant["title"]))
        if prop.get("type") == "object":
            yield from fields(prop, (*path, name))


def label(prop: dict[str, Any], parent: dict[str, Any], name: str) -> str:
    """The field's label as the Prefect UI writes it (`useSchemaProperty`)."""
    title = str(prop.get("title", ""))
    return title if name in parent.get("required", []) else f"{title} (Optional)"


def domain_fields(wait: Wait) -> dict[tuple[str, ...], bool]:
    """Whether the domain form requires each field, by the path `fields` gives it."""
    required: dict[tuple[str, ...], bool] = {}

    def walk(model: type[BaseModel], path: tuple[str, ...], prefix: str) -> None:
        for name, info in model.model_fields.items():
            required[(*path, prefix + name)] = info.is_required()
            nested = base_type(info.annotation)
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                walk(nested, (*path, prefix + name), "")

    for choice in wait.choices:
        if len(wait.choices) == 1:
            walk(choice.form, (), "")
        else:
            prefix = choice_name(choice).replace("-", "_") + "__"
            walk(choice.form, (RECORD, choice.label or choice.title), prefix)
    return required


@pytest.mark.parametrize(("process", "wait"), WAITS, ids=IDS)
def test_no_field_the_procedure_requires_is_marked_optional(process: Process, wait: Wait) -> None:
    schema = stored_schema(wait, open_case(process, wait))
    required = domain_fields(wait)
    seen = 0
    for path, prop, parent in fields(schema):
        shown = label(prop, parent, path[-1])
        if path in required:
            seen += 1
            assert shown.endswith("(Optional)") is not required[path], (path, shown)
        elif path in ((RECORD,), (RECORDED_BY,)):
            assert not shown.endswith("(Optional)"), (path, shown)
    # Every field of every choice was looked at (each choice is offered: every item is open).
    assert seen == len(required)


def one_answer(schema: dict[str, Any], variant: int) -> dict[str, Any]:
    """A whole answer to the form: every field the schema has (of one choice), filled as sbu fills
    a wake-up."""
    full = copy.deepcopy(schema)

    def everything(node: dict[str, Any]) -> None:
        if "properties" in node:
            node["required"] = list(node["properties"])
        for prop in node.get("properties", {}).values():
            everything(prop)
    record = full["properties"].get(RECORD)
    if record is not None:
        record["anyOf"] = [record["anyOf"][variant]]
        everything(record["anyOf"][0])
    everything(full)
    answer = wake_up_answer(full)
    answer[RECORDED_BY] = "Robin Hale"
    return answer


def without(answer: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    left = copy.deepcopy(answer)
    node = left
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return left


@pytest.mark.parametrize(("process", "wait"), WAITS, ids=IDS)
def test_the_form_is_refused_by_prefects_own_check_with_any_required_field_left_empty(
        process: Process, wait: Wait) -> None:
    schema = stored_schema(wait, open_case(process, wait))
    tabs = schema["properties"][RECORD]["anyOf"] if RECORD in schema["properties"] else [schema]
    refused = 0
    for number, tab in enumerate(tabs):
        whole = one_answer(schema, number)
        assert validate(whole, schema) == [], (tab["title"], whole)
        inside = (RECORD,) if tab is not schema else ()
        for path, _prop, parent in fields(tab):
            if path[-1] in parent.get("required", []) and _present(whole, (*inside, *path)):
                errors = validate(without(whole, (*inside, *path)), schema)
                assert errors, (tab["title"], path)
                # As the UI's check answers it (Prefect's server builds this; it must not fail): a
                # field of a form of one choice is marked where it is; in a choice's tab, the UI
                # shows the choice as not valid (Prefect's check reports a failed anyOf as a whole).
                answered = build_error_obj(errors)
                assert answered["valid"] is False
                at = [entry for entry in answered["errors"] if isinstance(entry, dict)]
                assert any(entry.get("property") == (RECORD if inside else path[0]) for entry in at), answered
                refused += 1
    assert refused >= len(tabs)


def _present(answer: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = answer
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize(("process", "wait"), WAITS, ids=IDS)
def test_sbus_wake_up_meets_every_form_and_says_nothing(process: Process, wait: Wait) -> None:
    schema = stored_schema(wait, open_case(process, wait))
    answer = wake_up_answer(schema)
    assert validate(answer, schema) == []
    assert is_wake_up(answer)
    assert answer[RECORDED_BY] == WAKE_UP_NAME
    run_input_for(wait).model_validate(answer)

    def said(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [leaf for inner in value.values() for leaf in said(inner)]
        return value if isinstance(value, list) else [value]

    offered = {title for _, prop, _ in fields(schema) for title in prop.get("enum", [])}
    assert all(value in {RECORDED_IN_STORE, WAKE_UP_NAME, False, "2000-01-01", *offered}
               for value in said(answer)), answer


def enum_at(schema: dict[str, Any], *path: str) -> list[str]:
    node = schema
    for part in path:
        if part in node.get("properties", {}):
            node = node["properties"][part]
        else:
            node = next(variant for variant in node["anyOf"] if variant["title"] == part)
    return list(node.get("enum") or node["items"]["enum"])


def test_choices_are_titled_and_narrowed_to_the_case() -> None:
    rr_meeting = next((p, w) for p, w in WAITS if w.name == "rr-meeting")
    schema = stored_schema(rr_meeting[1], open_case(*rr_meeting))
    # The agencies whose information is still owed, by title.
    assert enum_at(schema, RECORD, "Agency info", "rr_agency_responses__agency") == ["Health (ICB)", "Police"]

    panel = next((p, w) for p, w in WAITS if w.name == "rr-panel-and-plan")
    schema = stored_schema(panel[1], open_case(*panel))
    assert enum_at(schema, RECORD, "Panel reply", "rr_panel_response__response") == [
        "Agrees with the recommendation", "Disagrees with the recommendation", "Will hold a national review"]
    # A new action's agency: one of those involved; its source: a review the case has had.
    assert enum_at(schema, RECORD, "New action", "action_added__agency") == ["Police", "Health (ICB)"]
    assert enum_at(schema, RECORD, "New action", "action_added__source") == ["The Rapid Review", "The CSPR"]

    evidence = next((p, w) for p, w in WAITS if w.name == "cspr-evidence")
    schema = stored_schema(evidence[1], open_case(*evidence))
    assert enum_at(schema, RECORD, "IMR received", "cspr_imr__missing_sections") == [
        "Chronology", "Lessons learned", "Agency analysis"]

    actions = next((p, w) for p, w in WAITS if w.name == "actions")
    schema = stored_schema(actions[1], open_case(*actions))
    # An open action by its number, agency and due date; never by its summary, which was typed.
    titles = enum_at(schema, RECORD, "Progress", "action_progress__action")
    assert titles == enum_at(schema, RECORD, "Action done", "action__action")
    assert len(titles) == 1
    assert titles[0].startswith("A1: Police, due ")


def test_a_step_done_is_not_offered_and_an_act_with_nothing_to_act_on_neither() -> None:
    notification = CASE.wait_named("notification")
    schema = stored_schema(notification, open_case(CASE, notification, done=("sin-submission",)))
    assert [tab["title"] for tab in schema["properties"][RECORD]["anyOf"]] == ["Partners told"]
    setup = CSPR.wait_named("cspr-setup")
    state = open_case(CSPR, setup, done=("cspr-reviewer-appointed", "cspr-imr-requests"))
    tabs = [tab["title"] for tab in stored_schema(setup, state)["properties"][RECORD]["anyOf"]]
    assert "Reviewers" not in tabs
    assert "IMR requests" not in tabs
    assert tabs
    # Progress on an action is offered only while one is open.
    actions = next((p, w) for p, w in WAITS if w.name == "actions")
    state = open_case(*actions)
    state = replace(state, steps=tuple(replace(item, state=StepState.DONE) if item.step == "action" else item
                                       for item in state.steps))
    tabs = [tab["title"] for tab in stored_schema(actions[1], state)["properties"][RECORD]["anyOf"]]
    assert "Progress" not in tabs


def test_a_form_asked_again_fills_in_what_was_chosen_and_never_what_was_typed() -> None:
    decision = CASE.wait_named("dsp-decision")
    state = open_case(CASE, decision)
    refused = run_input_for(decision).model_validate({
        "sin": "no", "rapid_review": "yes", "rationale": "TYPED rationale",
        "dsp_la": {"name": "TYPED Dana", "deputy": True}, "dsp_health": {"name": "TYPED Sam"},
        "dsp_police": {"name": "TYPED Alex"}, "decided_on": "2027-01-05", "recorded_by": "TYPED Robin"})
    schema = stored_schema(decision, state, refused)
    defaults = {name: prop["default"] for name, prop in schema["properties"].items() if "default" in prop}
    assert defaults == {"sin": "no", "rapid_review": "yes", "dsp_la": {"deputy": True},
                        "dsp_health": {"deputy": False}, "dsp_police": {"deputy": False},
                        "decided_on": "2027-01-05"}
    assert "TYPED" not in str(schema)

    outcome = next((p, w) for p, w in WAITS if w.name == "rr-meeting")
    refused = run_input_for(outcome[1]).model_validate({
        "record": {"rr_meeting_moved__meeting_on": "2027-02-03", "rr_meeting_moved__start_time": "25:00",
                   "rr_meeting_moved__place": "TYPED place", "rr_meeting_moved__reason": "TYPED reason"},
        "recorded_by": "TYPED Robin"})
    schema = stored_schema(outcome[1], open_case(*outcome), refused)
    # The tab is the one chosen (the UI opens the tab whose fields the default has).
    assert schema["properties"][RECORD]["default"] == {"rr_meeting_moved__meeting_on": "2027-02-03"}
    assert "TYPED" not in str(schema)
    # A choice no longer offered is not filled in.
    agency = run_input_for(outcome[1]).model_validate({
        "record": {"rr_agency_responses__agency": "Education"}, "recorded_by": "Robin"})
    assert "default" not in stored_schema(outcome[1], open_case(*outcome), agency)["properties"][RECORD]


def test_a_title_chosen_on_the_form_is_recorded_as_its_value() -> None:
    evidence = CSPR.wait_named("cspr-evidence")
    answer = run_input_for(evidence).model_validate({"record": {
        "cspr_imr__agency": "Health (ICB)", "cspr_imr__completed_on": "2027-01-20",
        "cspr_imr__missing_sections": ["Lessons learned", "Chronology"]}, "recorded_by": "Robin"})
    _, form = domain_form(evidence, answer)
    assert form.model_dump(mode="json") == {"agency": "health", "completed_on": "2027-01-20",
                                            "missing_sections": ["lessons-learned", "chronology"]}
    actions = next(w for p, w in WAITS if w.name == "actions")
    answer = run_input_for(actions).model_validate({"record": {
        "action_progress__action": "A1: Police, due 12 Mar 2027", "action_progress__note": "Going well.",
        "action_progress__noted_on": "2027-01-20"}, "recorded_by": "Robin"})
    choice, form = domain_form(actions, answer)
    assert isinstance(form, ActionProgressForm)
    assert form.action == "a1"
    assert isinstance(choice, Step) is False

"""The process registry: what an entry must be, and how a wait's keys say what it waits for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from models.anchors import AnchorScope, AnchorSpec
from models.enums import Agency, Anchor, CaseStatus, Category, Role, StepId, StepState
from models.forms import AgencyResponseForm, StepCompletionForm
from models.processes import BUILTIN_PROCESSES
from models.processes.case import CASE
from models.processes.rapid_review import RAPID_REVIEW
from models.registry import ItemSpec, Process, Registry, Wait, build_registry
from models.rules import CaseFacts
from models.state import CaseState, ItemState
from models.timetable import STEP_RULES, StepRule, WorkingDaysAfter

DAY = date(2026, 12, 23)
CHECK = ItemSpec(StepRule("toy-check", "Toy check", Role.SBU, Anchor.DECISION, "a test",
                          WorkingDaysAfter(1)), StepCompletionForm)
VISIT = ItemSpec(StepRule("toy-visit", "Toy visit", Role.SBU, Anchor.DECISION, "a test",
                          WorkingDaysAfter(2)), AgencyResponseForm, subject_field="agency")


def item(step: str, subject: str = "", state: StepState = StepState.OPEN) -> ItemState:
    return ItemState(step=step, subject=subject, process="toy", title=step, state=state,
                     anchor=Anchor.DECISION, anchor_on=DAY, due=DAY, rule="a rule")


def case(*items: ItemState) -> CaseState:
    return CaseState(case_ref="SR-2026-0001", status=CaseStatus.IN_PROGRESS, path=None,
                     category=Category.SERIOUS_HARM,
                     facts=CaseFacts(Category.SERIOUS_HARM, abuse_or_neglect="suspected",  # type: ignore[arg-type]
                                     looked_after_child=False, care_leaver=False),
                     referred_at=datetime(2026, 12, 23, 10, tzinfo=UTC),
                     anchors={Anchor.REFERRAL_RECEIVED: DAY}, steps=items)


def toy(**changes: object) -> Process:
    process = Process(id="toy", title="Toy", flow="tests.flows.toy_process:toy_flow",
                      run_name="{case_ref} toy",
                      items=(CHECK, VISIT), waits=(Wait("toy-check", "Check", (CHECK,)),
                                                   Wait("toy-visits", "Visits", (VISIT,))))
    return replace(process, **changes)  # type: ignore[arg-type]


# -- what an entry must be ----------------------------------------------------------------------------

def test_the_built_in_registry_has_the_case_first_and_every_served_flow() -> None:
    registry = build_registry()
    assert registry.root is CASE
    assert [p.id for p in registry.processes] == ["case", "rapid-review", "cspr", "action-plan"]
    assert registry.process_of(StepId.RR_MEETING) is RAPID_REVIEW
    assert {f.name for f in registry.system_flows} == {"deadline-check", "deliver-outbox", "reconcile",
                                                       "daily-digest", "progress-summary", "yearly-report"}
    assert registry.flows[0] == "flows.case:case_flow"


def test_a_module_adds_its_processes_after_the_built_in_ones() -> None:
    registry = build_registry(["tests.flows.toy_process"])
    assert [p.id for p in registry.processes] == ["case", "rapid-review", "cspr", "action-plan", "toy"]
    assert registry.item("toy-visit") is not None


def test_a_module_without_processes_is_refused() -> None:
    with pytest.raises(ValueError, match="exposes no PROCESSES"):
        build_registry(["models.enums"])


@pytest.mark.parametrize(("change", "message"), [
    ({"id": "Toy Process"}, "process id"),
    ({"flow": "not a path"}, "package.module:function"),
    ({"run_name": "toy"}, "case_ref"),
    ({"waits": (Wait("toy-check", "Check", (ItemSpec(STEP_RULES[StepId.RR_MEETING], StepCompletionForm),)),)},
     "does not own"),
    ({"waits": (Wait("toy", "A", (CHECK,)), Wait("toy-visits", "B", (VISIT,)))}, "prefix"),
])
def test_a_malformed_process_is_refused_when_defined(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toy(**change)


def test_two_processes_cannot_own_one_step_or_share_an_id() -> None:
    with pytest.raises(ValueError, match="belongs to two processes"):
        Registry((*BUILTIN_PROCESSES, toy(), toy(id="toy-two")), ())
    with pytest.raises(ValueError, match="same id"):
        Registry((*BUILTIN_PROCESSES, toy(), toy(items=(), waits=())), ())


def test_an_item_spec_checks_its_form_has_the_fields_it_names() -> None:
    with pytest.raises(ValueError, match="no field agency"):
        ItemSpec(CHECK.rule, StepCompletionForm, subject_field="agency")
    with pytest.raises(ValueError, match="no field decided_on"):
        ItemSpec(CHECK.rule, StepCompletionForm, date_field="decided_on")
    with pytest.raises(ValueError, match="step id"):
        ItemSpec(replace(CHECK.rule, step="Toy_Check"), StepCompletionForm)


def test_a_clock_must_name_a_setting_that_exists() -> None:
    with pytest.raises(ValueError, match="no clock setting"):
        WorkingDaysAfter("toy_days")


# -- wait keys -------------------------------------------------------------------------------------------

def test_a_wait_for_one_step_is_keyed_by_its_name_until_the_step_is_done() -> None:
    wait = toy().wait_named("toy-check")
    open_case = case(item("toy-check"))
    assert wait.base_key(open_case) == "toy-check"
    assert [wait.key("toy-check", n) for n in (1, 2, 3)] == ["toy-check", "toy-check-2", "toy-check-3"]
    assert wait.owns("toy-check")
    assert wait.owns("toy-check-2")
    assert not wait.owns("toy-checks")
    assert not wait.answered("toy-check-2", open_case)
    done = case(item("toy-check", state=StepState.DONE))
    assert wait.base_key(done) is None
    assert wait.answered("toy-check", done)
    assert wait.answered("toy-check-2", done)


def test_a_wait_for_items_per_subject_counts_what_is_recorded() -> None:
    wait = toy().wait_named("toy-visits")
    assert wait.counts_progress
    before = case(item("toy-visit", Agency.POLICE), item("toy-visit", Agency.HEALTH))
    # Every form the store records for it counts (`records`), done or not.
    after = replace(case(item("toy-visit", Agency.POLICE, StepState.DONE), item("toy-visit", Agency.HEALTH)),
                    record_counts={"toy-visit": 1})
    assert (wait.base_key(before), wait.base_key(after)) == ("toy-visits-0", "toy-visits-1")
    assert wait.owns("toy-visits-0")
    assert wait.owns("toy-visits-0-2")
    assert not wait.owns("toy-visits")
    assert wait.base_of("toy-visits-0-2") == "toy-visits-0"
    assert wait.answered("toy-visits-0", after)
    assert not wait.answered("toy-visits-1-3", after)
    assert toy().wait_for_key("toy-visits-1-3") == wait


def test_the_rapid_review_waits_for_the_meeting_and_takes_late_information_after_it() -> None:
    meeting, outcome = RAPID_REVIEW.wait_named("rr-meeting"), RAPID_REVIEW.wait_named("rr-outcome")
    waiting = replace(case(item(StepId.RR_AGENCY_RESPONSES, Agency.POLICE), item(StepId.RR_MEETING)),
                      record_counts={StepId.RR_AGENCY_RESPONSES: 1, "rr-meeting-moved": 1})
    # The agency's information and the meeting's move both count: each moved the form to a new key.
    assert RAPID_REVIEW.current_wait(waiting) == meeting
    assert meeting.base_key(waiting) == "rr-meeting-2"
    # Held without the police's information: the run goes on to the outcome, whose form still takes
    # the late information.
    held = replace(case(item(StepId.RR_AGENCY_RESPONSES, Agency.POLICE),
                        item(StepId.RR_MEETING, state=StepState.DONE), item(StepId.RR_OUTCOME)))
    assert RAPID_REVIEW.current_wait(held) == outcome
    assert StepId.RR_AGENCY_RESPONSES in outcome.steps


def test_the_current_wait_is_the_first_with_an_item_open() -> None:
    process = toy()
    assert process.current_wait(case(item("toy-check"), item("toy-visit", "police"))) == \
        process.wait_named("toy-check")
    assert process.current_wait(case(item("toy-check", state=StepState.DONE),
                                     item("toy-visit", "police"))) == process.wait_named("toy-visits")
    assert process.current_wait(case(item("toy-check", state=StepState.DONE))) is None


# -- anchors -------------------------------------------------------------------------------------------

def test_the_procedures_anchors_keep_their_names_and_values_and_compare_as_members_did() -> None:
    assert Anchor.CSPR_COMMISSIONED == "cspr-commissioned"
    assert Anchor.CSPR_COMMISSIONED.value == "cspr-commissioned"
    assert Anchor("cspr-commissioned") is Anchor.CSPR_COMMISSIONED
    assert f"{Anchor.LA_AWARE}" == "la-aware"
    registry = build_registry()
    assert [spec.anchor for spec in registry.anchors] == [
        "referral-received", "la-aware", "decision", "notification", "sin-submitted", "meeting",
        "rr-outcome", "rr-report-sent", "cspr-commissioned", "planned-publication", "imrs-requested",
        "cspr-published", "action-added"]
    assert registry.anchor("action-added").scope is AnchorScope.ITEM  # type: ignore[union-attr]
    assert not registry.anchor("referral-received").movable  # type: ignore[union-attr]
    assert registry.anchor("toy-visit-booked") is None


@pytest.mark.parametrize("spelling", ["Toy", "toy_visit", "toy--visit", "-toy", "toy-", "t" * 41, "toy\n"])
def test_an_anchor_id_is_spelt_as_every_key_name_and_a_bad_one_is_not_echoed(spelling: str) -> None:
    with pytest.raises(ValueError, match="an anchor id is lowercase") as refused:
        Anchor(spelling)
    assert spelling not in str(refused.value)


def test_a_module_declares_its_own_anchor_and_the_registry_knows_it() -> None:
    registry = build_registry(["tests.flows.toy_process"])
    booked = registry.anchor("toy-visit-booked")
    assert booked is not None
    assert (booked.title, booked.scope, booked.movable) == ("Toy visits booked", AnchorScope.CASE, True)
    assert [spec.step for spec in registry.anchored_on(booked.anchor)] == ["toy-visit"]
    assert registry.anchors[-1] is booked


def test_a_step_counted_from_an_anchor_no_one_declares_is_refused() -> None:
    stray = ItemSpec(replace(VISIT.rule, anchor=Anchor("toy-stray")), AgencyResponseForm,
                     subject_field="agency")
    process = toy(items=(CHECK, stray), waits=(Wait("toy-check", "Check", (CHECK,)),))
    with pytest.raises(ValueError, match="counts from anchor toy-stray, which no process declares"):
        Registry((*BUILTIN_PROCESSES, process), ())
    declared = replace(process, anchors=(AnchorSpec(Anchor("toy-stray"), "A stray date"),))
    assert Registry((*BUILTIN_PROCESSES, declared), ()).anchor("toy-stray") is not None


def test_an_anchor_is_declared_once() -> None:
    with pytest.raises(ValueError, match="anchor decision is declared twice"):
        Registry((*BUILTIN_PROCESSES, toy(anchors=(AnchorSpec(Anchor.DECISION, "Decided again"),))), ())
    with pytest.raises(TypeError, match="Anchor"):
        AnchorSpec("toy-plain", "Not an Anchor")  # type: ignore[arg-type]

"""The process registry: what an entry must be, and how a wait's keys say what it waits for."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from models.anchors import AnchorScope, AnchorSpec
from models.effects import Effect
from models.enums import Agency, Anchor, CaseStatus, Category, Role, StepState
from models.forms import AgencyResponseForm, StepCompletionForm
from models.procedure import Context
from models.processes import BUILTIN_PROCESSES, StepId, build_registry
from models.processes.case import CASE
from models.processes.rapid_review import MEETING, MOVE_MEETING, RAPID_REVIEW
from models.registry import OpenedBy, Process, Registry, Step, Wait
from models.rules import CaseFacts
from models.state import CaseState, ItemState
from models.timetable import ClockSetting, WorkingDaysAfter

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 12, 23)
CHECK = Step("toy-check", "Toy check", owner=Role.SBU, anchor=Anchor.DECISION, source="a test",
             clock=WorkingDaysAfter(1), form=StepCompletionForm, waits=("toy-check",))
VISIT = Step("toy-visit", "Toy visit", owner=Role.SBU, anchor=Anchor.DECISION, source="a test",
             clock=WorkingDaysAfter(2), form=AgencyResponseForm, subject_field="agency",
             waits=("toy-visits",))


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


def toy_start(state: CaseState, ctx: Context) -> list[Effect]:
    return []  # the visits, one per agency, would open here


def toy(**changes: object) -> Process:
    process = Process(id="toy", title="Toy", flow="tests.flows.toy_process:toy_flow",
                      run_name="{case_ref} toy", steps=(CHECK, VISIT),
                      waits=(Wait("toy-check", "Check"), Wait("toy-visits", "Visits")),
                      on_start=toy_start)
    return replace(process, **changes)  # type: ignore[arg-type]


# -- what an entry must be ----------------------------------------------------------------------------

def test_the_built_in_registry_has_the_case_first_and_every_served_flow() -> None:
    registry = build_registry()
    assert registry.root is CASE
    assert [p.id for p in registry.processes] == ["case", "rapid-review", "cspr", "action-plan"]
    assert registry.process_of(StepId.RR_MEETING) is RAPID_REVIEW
    assert {f.name for f in registry.system_flows} == {"timer-pass", "deliver-outbox", "reconcile",
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
    # A wait listing a step that does not name it (its process's steps say which waits they are on).
    ({"waits": (Wait("toy-check", "Check", (MEETING,)), Wait("toy-visits", "Visits"))}, "does not name it"),
    ({"waits": (Wait("toy", "A"), Wait("toy-visits", "B"))}, "prefix"),
])
def test_a_malformed_process_is_refused_when_defined(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toy(**change)


def test_two_processes_cannot_own_one_step_or_share_an_id() -> None:
    with pytest.raises(ValueError, match="belongs to two processes"):
        Registry((*BUILTIN_PROCESSES, toy(), toy(id="toy-two")), ())
    with pytest.raises(ValueError, match="same id"):
        Registry((*BUILTIN_PROCESSES, toy(), toy(steps=(), waits=())), ())


def test_a_step_checks_its_form_has_the_fields_it_names() -> None:
    with pytest.raises(ValueError, match="no field agency"):
        replace(CHECK, subject_field="agency")
    with pytest.raises(ValueError, match="no field decided_on"):
        replace(CHECK, date_field="decided_on")
    with pytest.raises(ValueError, match="step id"):
        replace(CHECK, step="Toy_Check")


def test_a_clock_setting_must_be_a_setting_name_with_a_default_in_its_bound() -> None:
    with pytest.raises(ValueError, match="lowercase letters, digits and underscores"):
        WorkingDaysAfter(ClockSetting("Toy Days", 1, at_most=5))
    with pytest.raises(ValueError, match="from 1 to 5"):
        WorkingDaysAfter(ClockSetting("toy_days", 6, at_most=5))


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


# -- what the registry refuses when built ------------------------------------------------------------

def test_a_step_opened_by_a_step_or_act_no_process_has_is_refused() -> None:
    with pytest.raises(ValueError, match="toy-check is opened by toy-survey, which no process has"):
        Registry((*BUILTIN_PROCESSES, toy(steps=(replace(CHECK, opens=OpenedBy("toy-survey")), VISIT))), ())


def test_a_step_that_is_never_opened_is_refused() -> None:
    # Each waits for the other: neither is on start, and nothing that opens either is ever opened.
    check = replace(CHECK, opens=OpenedBy("toy-visit"))
    visit = replace(VISIT, opens=OpenedBy("toy-check"))
    with pytest.raises(ValueError, match="step toy-check is never opened: it is opened by toy-visit"):
        Registry((*BUILTIN_PROCESSES, toy(steps=(check, visit))), ())
    # One item per agency on start, and no on_start to open them.
    with pytest.raises(ValueError, match="step toy-visit is never opened"):
        toy(on_start=None)


def test_a_step_on_a_wait_its_process_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="toy-check names wait toy-survey, which the process does not have"):
        toy(steps=(replace(CHECK, waits=("toy-survey",)), VISIT))
    with pytest.raises(ValueError, match="no step waits for wait toy-visits"):
        toy(steps=(CHECK, replace(VISIT, waits=(), also_on=("toy-visits",))))


def test_steps_a_module_adds_to_a_process_that_does_not_exist_are_refused() -> None:
    with pytest.raises(ValueError, match="STEPS adds steps to toy-survey, which no process is"):
        build_registry(["tests.models.registry_modules.orphan_steps"])


def test_an_id_used_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="process toy: a step id is declared twice"):
        toy(steps=(CHECK, replace(VISIT, step="toy-check")))
    with pytest.raises(ValueError, match="process toy: a wait name is declared twice"):
        toy(waits=(Wait("toy-check", "Check"), Wait("toy-visits", "Visits"), Wait("toy-check", "Again")))
    # The built-in meeting added to the toy as well: one step, two processes.
    with pytest.raises(ValueError, match="step rr-meeting belongs to two processes"):
        build_registry(["tests.models.registry_modules.meeting_twice"])
    with pytest.raises(ValueError, match="act toy-check is named twice"):
        Registry((*BUILTIN_PROCESSES, toy(acts=(replace(MOVE_MEETING, name="toy-check"),))), ())


def test_a_role_no_one_can_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="toy-check is recorded by toy-inspector, which is not a role"):
        Registry((*BUILTIN_PROCESSES, toy(steps=(replace(CHECK, recorded_by=("toy-inspector",)), VISIT))), ())
    # Declared by the process, it is one.
    inspected = toy(steps=(replace(CHECK, recorded_by=("toy-inspector",)), VISIT), roles=("toy-inspector",))
    registry = Registry((*BUILTIN_PROCESSES, inspected), ())
    assert registry.roles == {"toy-inspector"}


def test_a_clock_setting_declared_twice_differently_is_refused() -> None:
    clock = WorkingDaysAfter(ClockSetting("sin_submission_days", 6, at_most=60))
    with pytest.raises(ValueError, match="clock setting sin_submission_days is declared twice, differently"):
        Registry((*BUILTIN_PROCESSES, toy(steps=(replace(CHECK, clock=clock), VISIT))), ())


def test_the_module_that_builds_the_registry_is_a_valid_addition() -> None:
    # A module adding a step to a built-in process adds it to that process's form, in one place.
    registry = build_registry(["tests.models.practitioner_event"])
    cspr = registry.process("cspr")
    assert cspr.steps[-1].step == "cspr-practitioner-event"
    assert "cspr-practitioner-event" in cspr.wait_named("cspr-evidence").steps
    assert registry.process_of("cspr-practitioner-event") is cspr


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


def test_each_of_the_procedures_anchors_is_declared_by_the_process_whose_rules_set_it() -> None:
    declared = {process.id: [spec.anchor for spec in process.anchors] for process in BUILTIN_PROCESSES}
    assert declared == {
        "case": ["referral-received", "la-aware", "decision", "notification", "sin-submitted"],
        "rapid-review": ["meeting", "rr-outcome", "rr-report-sent"],
        "cspr": ["cspr-commissioned", "planned-publication", "imrs-requested", "cspr-published"],
        "action-plan": ["action-added"]}
    # Every `SetAnchor(Anchor.X, ...)` in a process's module sets an anchor that process declares.
    for process in BUILTIN_PROCESSES:
        module = REPO_ROOT / "models" / "processes" / f"{process.id.replace('-', '_')}.py"
        set_here = {getattr(Anchor, call.args[0].attr) for call in ast.walk(ast.parse(module.read_text()))
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id == "SetAnchor" and isinstance(call.args[0], ast.Attribute)}
        assert set_here <= set(declared[process.id]), process.id
        assert set_here or process.id == "action-plan", process.id  # the check sees the calls


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
    stray = replace(VISIT, anchor=Anchor("toy-stray"))
    process = toy(steps=(CHECK, stray))
    with pytest.raises(ValueError, match="counts from anchor toy-stray, which no process declares"):
        Registry((*BUILTIN_PROCESSES, process), ())
    declared = replace(process, anchors=(AnchorSpec(Anchor("toy-stray"), "A stray date"),))
    assert Registry((*BUILTIN_PROCESSES, declared), ()).anchor("toy-stray") is not None


def test_an_anchor_is_declared_once() -> None:
    with pytest.raises(ValueError, match="anchor decision is declared twice"):
        Registry((*BUILTIN_PROCESSES, toy(anchors=(AnchorSpec(Anchor.DECISION, "Decided again"),))), ())
    with pytest.raises(TypeError, match="Anchor"):
        AnchorSpec("toy-plain", "Not an Anchor")  # type: ignore[arg-type]


# -- the registry and the processes import one way ------------------------------------------------------

def test_importing_the_registry_does_not_import_the_processes() -> None:
    probe = ("import sys, models.registry, models.timetable, models.enums; "
             "print(sorted(m for m in sys.modules if m.startswith('models.processes')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_the_declarations_leave_the_engine_unimported() -> None:
    """`sbu status` and `sbu timetable` read the registry's declarations only: the effects, the
    procedure's engine, the case state and the dashboard's descriptions are imported by the
    handlers that use them, not by the processes that name those handlers."""
    engine = ("models.effects", "models.procedure", "models.state", "models.descriptions")
    probe = ("import sys, models.processes, models.settings; models.processes.build_registry(); "
             f"print(sorted(m for m in {engine!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"
    # The probe sees an import: the engine is there once a handler has run.
    probe = probe.replace("build_registry(); ", "build_registry(); import models.procedure; ")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT)
    assert result.stdout.strip() != "[]"


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """Which of `modules` the module at `path` imports when it is imported: its module-level
    imports, not those inside functions or under `TYPE_CHECKING`."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & modules


def circle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in `graph` (each module to those it imports), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            if (circle := visit(imported, [*path, name])) is not None:
                return circle
        done.add(name)
        return None

    return next((circle for name in sorted(graph) if (circle := visit(name, [])) is not None), None)


def test_no_module_of_the_domain_imports_itself_round_a_circle() -> None:
    paths = {".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): path
             for path in (REPO_ROOT / "models").rglob("*.py")}
    graph = {name: module_level_imports(path, set(paths)) for name, path in paths.items()}
    assert circle_in(graph) is None
    # The check reads the imports, and would see a circle.
    assert {"models.registry", "models.forms"} <= graph["models.processes.cspr"]
    upward = {*graph["models.registry"], "models.processes"}
    assert circle_in({**graph, "models.registry": upward}) is not None

"""The proof that a step is one declaration: a practitioner learning event, due 30 working days
after a CSPR is commissioned, added to the CSPR by `tests/models/practitioner_event.py` alone and
registered as a partnership would (`SBU_PROCESS_MODULES`), is in `sbu timetable`, `sbu status`,
`sbu record` and its help, the CSPR's dashboard form and its Markdown, the case's timers, the access
rules and the case's closure, without another line naming it.

The `sbu` command runs in this process (`deployments.cli.main`), on a case store the case service
drives: a notified case whose Rapid Review recommends a local CSPR on Wed 13 Jan 2027. Thirty working
days after it (no bank holiday falls in between): Thu 14, Fri 15 Jan (2), 18-22 (7), 25-29 (12),
1-5 Feb (17), 8-12 (22), 15-19 (27), Mon 22, Tue 23, Wed 24 Feb (30).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from deployments.cli import main
from models.access import People, Person, check_change, roles_to_record
from models.clock import FixedClock
from models.descriptions import form_markdown
from models.effects import CancelItem, CloseCase, Recorded, Referred
from models.enums import StepState, TimerKind
from models.errors import Refused
from models.forms import StepCompletionForm
from models.procedure import handle
from models.processes import SYSTEM_FLOWS, StepId
from models.processes.action_plan import ACTION_PLAN
from models.processes.case import CASE
from models.processes.rapid_review import RAPID_REVIEW
from models.registry import Registry
from models.settings import load_settings
from tasks.run_inputs import domain_form, run_input_for
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW, SIGNATURES
from tests.models.practitioner_event import PRACTITIONER_EVENT
from tests.tasks.report_cases import Driver

MODULE = "tests.models.practitioner_event"
EVENT = "cspr-practitioner-event"
COMMISSIONED = date(2027, 1, 13)
DUE = date(2027, 2, 24)
# The day `sbu` works on: the event is open, and may be recorded as held on it.
TODAY = datetime(2027, 2, 22, 12, 0, tzinfo=UTC)


@dataclass
class System:
    """The case service and `sbu`, on one data directory, with the practitioner event registered."""

    service: CaseService
    run: Driver

    def sbu(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    def commissioned_case(self, external_ref: str) -> str:
        """A notified case whose Rapid Review recommends a local CSPR on `COMMISSIONED`."""
        run = self.run
        run.on(date(2026, 12, 23))
        case_ref = run.refer(external_ref=external_ref)
        run.decide(case_ref, sin=True, rapid_review=True)
        run.on(date(2026, 12, 29))
        run.record(case_ref, StepId.SIN_SUBMISSION, national_ref="CSIN-2026-0042",
                   completed_on=date(2026, 12, 29))
        run.on(date(2027, 1, 11))
        run.record(case_ref, StepId.RR_MEETING, completed_on=date(2027, 1, 11))
        run.on(COMMISSIONED)
        run.record(case_ref, StepId.RR_OUTCOME, immediate_actions="Siblings seen; plan reviewed.",
                   learning="Information was not shared at discharge.", recommendation="local-cspr",
                   rationale="Systemic learning across agencies.", decided_on=COMMISSIONED, **SIGNATURES)
        return case_ref


def environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *, modules: str = MODULE,
                **more: str) -> None:
    for name in [n for n in os.environ if n.startswith(("SBU_", "PREFECT_"))]:
        monkeypatch.delenv(name)
    values = {"SBU_DATA_DIR": str(data_dir), "SBU_USER": "test-officer", "SBU_PROCESS_MODULES": modules,
              "SBU_TIME_EPOCH": datetime.now(UTC).isoformat(), "SBU_TIME_START": TODAY.isoformat(),
              # No Prefect server: `sbu` says so in a note and the store keeps the change.
              "PREFECT_API_URL": "http://127.0.0.1:9/api", **more}
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    environment(monkeypatch, tmp_path)
    settings = load_settings()
    store = Store(settings.sqlalchemy_url).migrate()
    clock = FixedClock(EXAMPLE_NOW)
    service = CaseService(store=store, settings=settings, clock=clock)
    yield System(service, Driver(service, clock))
    store.dispose()


# -- the timetable ----------------------------------------------------------------------------------

TIMETABLE = ["timetable", "--referred", "2027-01-11T09:00:00+00:00", "--aware", "2027-01-08",
             "--commissioned", COMMISSIONED.isoformat()]


def test_the_timetable_counts_it_from_commissioning(system: System,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = system.sbu(capsys, *TIMETABLE, "--json")
    assert code == 0, err
    rows = {row["step"]: row for row in json.loads(out)["deadlines"]}
    assert rows[EVENT] == {"step": EVENT, "due": DUE.isoformat(), "title": "Practitioner learning event held",
                           "anchor": "cspr-commissioned", "anchor_date": COMMISSIONED.isoformat(),
                           "rule": "30 working days after cspr-commissioned",
                           "source": "local procedure, step 6"}
    code, out, err = system.sbu(capsys, *TIMETABLE)
    assert code == 0, err
    assert (f"{EVENT}  Wed 24 Feb 2027  30 working days after cspr-commissioned  [local procedure, step 6]"
            in out.splitlines())


def test_its_clock_is_a_setting_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # Set by its own name, as every clock is, with no edit anywhere else: 25 working days is Wed 17 Feb.
    environment(monkeypatch, tmp_path, SBU_CLOCKS__CSPR_PRACTITIONER_EVENT_DAYS="25")
    capsys.readouterr()
    assert main([*TIMETABLE, "--json"]) == 0
    rows = {row["step"]: row for row in json.loads(capsys.readouterr().out)["deadlines"]}
    assert (rows[EVENT]["due"], rows[EVENT]["rule"]) == ("2027-02-17",
                                                         "25 working days after cspr-commissioned")
    # Beyond its bound, or for a clock no step has, the command says which setting, in one line.
    for name, value in (("CSPR_PRACTITIONER_EVENT_DAYS", "251"), ("CSPR_PRACTITIONER_EVENTS_DAYS", "25")):
        environment(monkeypatch, tmp_path, **{f"SBU_CLOCKS__{name}": value})
        capsys.readouterr()
        assert main(TIMETABLE) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"sbu: error: settings: clocks: {name.lower()} ")
        assert len(err.strip().splitlines()) == 1
    # Without the module, no step of the CSPR counts from commissioning under that name.
    environment(monkeypatch, tmp_path, modules="")
    capsys.readouterr()
    assert main([*TIMETABLE, "--json"]) == 0
    steps = [row["step"] for row in json.loads(capsys.readouterr().out)["deadlines"]]
    assert EVENT not in steps
    assert "cspr-reviewer-appointed" in steps


# -- the case ----------------------------------------------------------------------------------------

def test_it_opens_when_the_cspr_is_commissioned_with_its_timers(system: System,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    case_ref = system.commissioned_case("POL-2026-1234")
    event = system.service.case_view(case_ref).item(EVENT)
    assert event is not None
    assert (event.process, event.state, event.due, event.anchor_on) == ("cspr", StepState.OPEN, DUE,
                                                                        COMMISSIONED)
    code, out, err = system.sbu(capsys, "status", case_ref)
    assert code == 0, err
    assert f"  {EVENT:<30} due Wed 24 Feb 2027  open" in out.splitlines()
    assert "stage: cspr" in out
    # Its reminder the working day before, its overdue alert when the day ends, then the DSPs.
    timers = {timer.kind: timer for timer in system.service.timers(case_ref=case_ref) if timer.step == EVENT}
    assert set(timers) == {TimerKind.REMINDER, TimerKind.OVERDUE, TimerKind.ESCALATION}
    assert timers[TimerKind.REMINDER].fire_at.date() == date(2027, 2, 23)
    assert timers[TimerKind.ESCALATION].fire_at.date() == date(2027, 2, 25)


def test_sbu_record_lists_it_explains_it_and_records_it(system: System,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = system.sbu(capsys, "record", "--help")
    assert code == 0
    listed = " ".join(out.split("Steps:", 1)[1].split("Acts:", 1)[0].split())
    # In the registry's order: the CSPR's own steps, then the step added to it.
    assert f"cspr-publication, cspr-action-plan, {EVENT}, action." in listed
    assert "Example: sbu record SR-2026-0001 sin-submission" in out
    code, out, _ = system.sbu(capsys, "record", "SR-2026-0001", EVENT, "--help")
    assert code == 0
    assert out.startswith(f"Usage: sbu record CASE_REF {EVENT}")
    assert "Practitioner learning event held. A step done on a date" in out
    assert "--reference" in out
    assert f"Example: sbu record SR-2026-0001 {EVENT}" in out

    case_ref = system.commissioned_case("POL-2026-1234")
    code, out, err = system.sbu(capsys, "record", case_ref, EVENT, "--on", "2027-02-19")
    assert code == 0, err
    assert out.strip() == f"{case_ref}: recorded {EVENT}"
    done = system.service.case_view(case_ref).item(EVENT)
    assert done is not None
    assert (done.state, done.completed_on) == (StepState.DONE, date(2027, 2, 19))
    assert not [timer for timer in system.service.timers(case_ref=case_ref) if timer.step == EVENT]


# -- the dashboard ---------------------------------------------------------------------------------

def test_the_cspr_evidence_form_asks_for_it(system: System) -> None:
    case_ref = system.commissioned_case("POL-2026-1234")
    wait = system.service.registry.process("cspr").wait_named("cspr-evidence")
    schema = run_input_for(wait).model_json_schema()
    variants = [schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]
                for ref in schema["properties"]["record"]["anyOf"]]
    tabs = {variant["title"]: variant for variant in variants}
    assert list(tabs) == ["IMR received", "Family", "Draft", "Practitioners"]
    practitioners = tabs["Practitioners"]
    assert practitioners["description"].startswith("Practitioner learning event held.")
    assert set(practitioners["properties"]) == {"cspr_practitioner_event__completed_on",
                                                "cspr_practitioner_event__reference"}
    # An answer on that tab records the event with its own form.
    answer = run_input_for(wait).model_validate(
        {"record": {"cspr_practitioner_event__completed_on": "2027-02-19"}, "recorded_by": "Robin"})
    choice, form = domain_form(wait, answer)
    assert (choice, form) == (PRACTITIONER_EVENT, StepCompletionForm(completed_on=date(2027, 2, 19)))
    # The form's Markdown names it, when it is due, and the rule that says so.
    markdown = form_markdown(wait, system.service.case_view(case_ref), None)
    assert ("- **Practitioner learning event held**: by the end of Wednesday 24 February 2027 (London time; "
            "2027-02-25 00:00 UTC). Rule: 30 working days after cspr-commissioned (local procedure, step 6)."
            in markdown.splitlines())
    # The CSPR waits on that form while the event is open.
    assert "cspr-practitioner-event" in wait.primary  # type: ignore[operator]


# -- who may record it, and the case's closure ----------------------------------------------------------

def test_only_the_sbu_records_it(system: System) -> None:
    registry = system.service.registry
    assert roles_to_record(registry, EVENT) == {"sbu"}
    people = People.of([Person("jbrook", "Jo Brook", frozenset({"sbu"})),
                        Person("dlee", "Dana Lee", frozenset({"dsp-la"}))])
    event = Recorded(EVENT, StepCompletionForm(completed_on=date(2027, 2, 19)))
    assert check_change(people, actor="jbrook", event=event, registry=registry).handle == "jbrook"
    with pytest.raises(Refused, match=f"^{EVENT} may be recorded only by sbu;"):
        check_change(people, actor="dlee", event=event, registry=registry)


def test_a_national_review_cancels_it(system: System) -> None:
    case_ref = system.commissioned_case("POL-2026-1234")
    run = system.run
    run.on(date(2027, 1, 14))
    run.record(case_ref, StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 14))
    run.on(date(2027, 1, 20))
    run.record(case_ref, StepId.RR_PANEL_RESPONSE, response="national-review", completed_on=date(2027, 1, 20))
    state = system.service.case_view(case_ref)
    assert state.state_of(EVENT) is StepState.CANCELLED
    assert state.state_of(StepId.CSPR_REVIEWER_APPOINTED) is StepState.CANCELLED
    # The Rapid Review's own action plan is no CSPR step: a national review leaves it open.
    assert state.state_of(StepId.RR_ACTION_PLAN) is StepState.OPEN
    assert not [timer for timer in system.service.timers(case_ref=case_ref) if timer.step == EVENT]


def test_open_it_keeps_the_case_open_unless_its_declaration_says_otherwise(system: System) -> None:
    case_ref = system.commissioned_case("POL-2026-1234")
    state = system.service.case_view(case_ref)
    # Everything else done: only the event is open.
    only_the_event = replace(state, steps=tuple(
        item if item.step == EVENT else replace(item, state=StepState.DONE, completed_on=COMMISSIONED)
        for item in state.steps))
    context = system.service.context()
    outcome = handle(only_the_event, Referred(), context)
    assert not [effect for effect in outcome.effects if isinstance(effect, CloseCase)]
    # Declared not to keep the case open, it is cancelled as the case closes.
    cspr = system.service.registry.process("cspr")
    lets_it_close = replace(PRACTITIONER_EVENT, keeps_case_open=False)
    variant = replace(cspr, steps=(*cspr.steps[:-1], lets_it_close))
    registry = Registry((CASE, RAPID_REVIEW, variant, ACTION_PLAN), SYSTEM_FLOWS)
    effects: list[Any] = list(handle(only_the_event, Referred(), replace(context, registry=registry)).effects)
    assert [effect for effect in effects if isinstance(effect, CancelItem)] == [
        CancelItem(step=EVENT, subject="")]
    assert [effect.reason for effect in effects if isinstance(effect, CloseCase)] == [
        "the reviews are done and every action of their plans is closed"]

"""Decisions and records at once, from `sbu` and the dashboard together, on the
whole system: `sbu serve` on a real Prefect server, `sbu decide` and `sbu record` as the user runs
them (processes of their own), and forms submitted as the Prefect UI submits them
(`resume_flow_run` with the answer), all started in the same instant on several cases.

Whoever wins, exactly one of two conflicting decisions is recorded; the other is refused clearly
(`sbu` exits 2 saying where the decision was already recorded; the dashboard's next form says its
answer was not recorded, or Prefect refuses the resume of a run no longer waiting), without
echoing what was typed. Nothing is half-written: each case's rows in the store are those of the
same change made alone, and the audit chain is whole. tests/tasks/test_concurrency.py races the
case service directly, harder and on PostgreSQL too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tasks.prefect.resume import waiting_key
from tasks.store.audit import verify_audit_chain
from tests.conftest import EXAMPLE_REFERRAL
from tests.figures import record_figure
from tests.flows.conftest import SystemFactory
from tests.flows.test_serve_killed_e2e import descendants, kinds

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = "2026-12-23"
DECIDING = 2  # cases whose decision is raced
RECORDING = 1  # cases whose SIN submission is raced
CLI_DELAYS = (0.0, 4.0)  # how long each deciding case's `sbu decide` is held back
PER_CASE_TABLES = ("decisions", "items", "records", "audit_events", "outbox", "timers", "case_runs")
# Each side's typed values are its own, so an echo of either in a refusal shows.
CLI_RATIONALE = "Typed at the command line: abuse suspected, criteria met."
UI_RATIONALE = "Typed on the dashboard: learning only, no notification."
CLI_DSPS = {"dsp_la": "Cli La Signer", "dsp_health": "Cli Health Signer", "dsp_police": "Cli Police Signer"}
UI_DSPS = {"dsp_la": "Ui La Signer", "dsp_health": "Ui Health Signer", "dsp_police": "Ui Police Signer"}
TYPED = [CLI_RATIONALE, UI_RATIONALE, *CLI_DSPS.values(), *UI_DSPS.values(), "Dana Dashboard"]


def refer(system: LocalSystem, path: Path, n: int) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, external_ref=f"POL-RACE-{n}")))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def cli_decide(system: LocalSystem, case_ref: str, *, sin: bool) -> list[str]:
    names = [arg for role, name in CLI_DSPS.items() for arg in (f"--{role.replace('_', '-')}", name)]
    return ["decide", case_ref, "--sin" if sin else "--no-sin", "--rapid-review",
            "--rationale", CLI_RATIONALE, *names, "--on", DAY]


def ui_decision() -> dict[str, Any]:
    """No SIN, a Rapid Review: allowed for this case, and in conflict with `sbu`'s decision."""
    return {"sin": "no", "rapid_review": "yes", "rationale": UI_RATIONALE,
            **{role: {"name": name, "deputy": False} for role, name in UI_DSPS.items()},
            "decided_on": DAY, "recorded_by": "Dana Dashboard"}


def store(system: LocalSystem, query: str, *params: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{system.data_dir / 'sbu.db'}?mode=ro", uri=True, timeout=30)
    try:
        return list(connection.execute(query, params).fetchall())
    finally:
        connection.close()


def rows_of(system: LocalSystem, case_ref: str) -> dict[str, int]:
    [(case_id,)] = store(system, "SELECT id FROM cases WHERE case_ref = ?", case_ref)
    return {table: store(system, f"SELECT count(*) FROM {table} WHERE case_id = ?", case_id)[0][0]
            for table in PER_CASE_TABLES}


def settled(system: LocalSystem) -> bool:
    return not store(system, "SELECT id FROM outbox WHERE status = 'pending'")


def all_at_once(calls: list[tuple[str, Callable[[], Any]]]) -> dict[str, Any]:
    """Each call in a thread of its own, released together; each one's answer or error."""
    start = threading.Barrier(len(calls))
    answers: dict[str, Any] = {}

    def one(label: str, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            answers[label] = call()
        except Exception as error:  # noqa: BLE001 - judged by the test
            answers[label] = error

    threads = [threading.Thread(target=one, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return answers


def waiting_on(system: LocalSystem, prefixes: dict[str, str]) -> dict[str, FlowRun]:
    """The run named after each case, once it waits on a key starting with the case's prefix.
    One request a poll reads them all: a request each, many times a second, took the Prefect
    server's time from the very runs waited on."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    named = FlowRunFilter(name=FlowRunFilterName(any_=list(prefixes)))
    found: dict[str, FlowRun] = {}

    def all_waiting() -> bool:
        with system.client() as client:
            runs = client.read_flow_runs(flow_run_filter=named)
        for run in runs:
            key = waiting_key(run)
            if run.name in prefixes and key is not None and key.startswith(prefixes[run.name]):
                found.setdefault(run.name, run)
        return len(found) == len(prefixes)

    wait_until(all_waiting, timeout=60 + STALL_ALLOWANCE, what=f"{sorted(set(prefixes.values()))} waits")
    return found


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads (setting up is mostly waiting on processes); their results in order."""
    answers = all_at_once([(str(n), call) for n, call in enumerate(calls)])
    errors = [answer for answer in answers.values() if isinstance(answer, Exception)]
    if errors:
        raise errors[0]
    return [answers[str(n)] for n in range(len(calls))]


def test_decisions_and_records_from_sbu_and_the_dashboard_at_once_give_one_winner_each(
        local_system: SystemFactory, tmp_path: Path) -> None:
    began = time.monotonic()
    system = local_system(case_start=CASE_START)
    refs = in_parallel([partial(refer, system, tmp_path / f"{n}.json", n)
                        for n in range(DECIDING + RECORDING + 3)])
    deciding, recording = refs[:DECIDING], refs[DECIDING:DECIDING + RECORDING]
    ui_alone, sin_alone, overtaken = refs[-3:]
    # The cases whose SIN submission is raced are decided first, one at a time, beside two cases
    # that show what each change makes alone: a decision on the dashboard, and a SIN recorded.
    # The last case waits for the race made certain, after the burst.
    overtaken_run = waiting_on(system, dict.fromkeys(refs, "dsp-decision"))[overtaken]
    in_parallel([*(partial(system.sbu, *cli_decide(system, ref, sin=True))
                   for ref in [*recording, sin_alone]),
                 partial(dashboard_decides_alone, system, ui_alone)])
    decision_runs = waiting_on(system, dict.fromkeys(deciding, "dsp-decision"))
    notification_runs = waiting_on(system, dict.fromkeys([*recording, sin_alone], "notification-"))
    wait_until(lambda: settled(system), timeout=60 + STALL_ALLOWANCE, what="the outbox to deliver")
    alone = {"cli": rows_of(system, recording[0]), "prefect-ui": rows_of(system, ui_alone)}
    # Two cases decided alike at the command line hold the same rows.
    assert rows_of(system, sin_alone) == alone["cli"]
    system.sbu("record", sin_alone, "sin-submission", "--national-ref", "CSIN-ALONE", "--on", DAY)
    system.sbu("record", sin_alone, "partners-informed", "--on", DAY)
    wait_until(lambda: settled(system), timeout=60 + STALL_ALLOWANCE, what="the outbox to deliver")
    alone["sin-recorded"] = rows_of(system, sin_alone)
    set_up = time.monotonic() - began

    def resume(run_id: Any, run_input: dict[str, Any]) -> str:
        with system.client() as client:
            return str(client.resume_flow_run(run_id, run_input=run_input).status.value)

    def later(delay: float, call: Callable[[], Any]) -> Any:
        time.sleep(delay)
        return call()

    calls: list[tuple[str, Callable[[], Any]]] = []
    for ref, delay in zip(deciding, CLI_DELAYS, strict=True):
        # `sbu` starts a Python process before it can record: left level, it wins every time.
        # Some of its starts are held back so that the dashboard wins too, and the refusal both
        # ways is seen; the first case is the dead heat.
        calls += [(f"{ref} cli", partial(later, delay, partial(system.sbu, *cli_decide(system, ref, sin=True),
                                                                check=False, own_process=True))),
                  (f"{ref} ui", partial(resume, decision_runs[ref].id, ui_decision()))]
    for n, ref in enumerate(recording):
        calls += [(f"{ref} cli", partial(system.sbu, "record", ref, "sin-submission", "--national-ref",
                                         f"CSIN-CLI-{n}", "--on", DAY, check=False, own_process=True)),
                  (f"{ref} ui", partial(resume, notification_runs[ref].id, {
                      "record": {"sin_submission__national_ref": f"CSIN-UI-{n}",
                                 "sin_submission__completed_on": DAY},
                      "recorded_by": "Dana Dashboard"})),
                  (f"{ref} cli partners", partial(system.sbu, "record", ref, "partners-informed", "--on", DAY,
                                                  check=False, own_process=True))]
    burst = time.monotonic()
    answers = all_at_once(calls)
    burst_took = time.monotonic() - burst
    errors = {label: answer for label, answer in answers.items() if isinstance(answer, Exception)}
    assert errors == {}

    problems: list[str] = []
    outcomes: dict[str, str] = {}
    for ref in deciding:
        # Every run moves on from the decision, whoever won: to the SIN if `sbu` did, to the
        # Rapid Review if the dashboard did.
        moved_on(system, decision_runs[ref].id, "dsp-decision", what=f"{ref} to move on from its decision")
        [(via, rationale)] = store(system, "SELECT d.recorded_via, d.rationale FROM decisions d JOIN cases c "
                                           "ON c.id = d.case_id WHERE c.case_ref = ?", ref)
        cli, ui = answers[f"{ref} cli"], answers[f"{ref} ui"]
        outcomes[ref] = via
        if via == "cli":
            assert rationale == CLI_RATIONALE
            if cli.returncode != 0:
                problems.append(f"{ref}: sbu won but exited {cli.returncode}: {cli.stderr}")
            problems += dashboard_told(system, ref, decision_runs[ref].id, ui)
        elif via == "prefect-ui":
            assert rationale == UI_RATIONALE
            problems += sbu_told(ref, cli, where="the dashboard")
        else:
            problems.append(f"{ref}: decision recorded via {via}")
    for n, ref in enumerate(recording):
        moved_on(system, notification_runs[ref].id, "notification-", what=f"{ref} to move on from its SIN")
        [(details, via)] = store(system, "SELECT i.details, i.completed_via FROM items i JOIN cases c "
                                         "ON c.id = i.case_id WHERE c.case_ref = ? "
                                         "AND i.step = 'sin-submission'", ref)
        # The one recorded is the side's that says it recorded it; the other was told "already
        # recorded" (sbu), or its answer was read and set aside (the dashboard).
        expected = f"CSIN-CLI-{n}" if via == "cli" else f"CSIN-UI-{n}"
        if json.loads(details)["national_ref"] != expected:
            problems.append(f"{ref}: SIN recorded via {via} as {details}")
        cli = answers[f"{ref} cli"]
        if cli.returncode != 0 or (via != "cli" and "already recorded" not in cli.stdout):
            problems.append(f"{ref}: sbu record said {cli.returncode} {cli.stdout} {cli.stderr}")
        outcomes[ref] = via

    # Nothing half-written or doubled: each case's rows are those of one change made alone.
    wait_until(lambda: settled(system), timeout=60 + STALL_ALLOWANCE, what="the outbox to deliver")
    for ref in deciding:
        if rows_of(system, ref) != alone[outcomes[ref]]:
            problems.append(f"{ref}: rows {rows_of(system, ref)}, alone {alone[outcomes[ref]]}")
    for ref in recording:
        if rows_of(system, ref) != alone["sin-recorded"]:
            problems.append(f"{ref}: rows {rows_of(system, ref)}, alone {alone['sin-recorded']}")
    engine = create_engine(f"sqlite:///{system.data_dir / 'sbu.db'}")
    try:
        chain = verify_audit_chain(engine)
    finally:
        engine.dispose()
    if not chain.intact:
        problems.append(f"audit chain: {chain.as_json()}")
    took = time.monotonic() - began
    record_figure(kind="load", what=f"`sbu` and dashboard answers at once on {DECIDING + RECORDING} cases "
                                    "(conflicting decisions, the same step recorded twice), end to end",
                  held=len(calls), won_by_sbu=sum(1 for via in outcomes.values() if via == "cli"),
                  won_by_dashboard=sum(1 for via in outcomes.values() if via == "prefect-ui"),
                  lost=len(problems), seconds=round(burst_took, 1))
    print(f"\n{len(calls)} answers at once in {burst_took:.1f} s (set-up {set_up:.0f} s), "
          f"winners {outcomes}; test {took:.0f} s")
    assert problems == []
    # On the same system (a start of serve of its own cost as much as the rest of this race):
    a_dashboard_answer_overtaken_by_sbu_is_told_on_the_next_form(system, overtaken, overtaken_run)


def a_dashboard_answer_overtaken_by_sbu_is_told_on_the_next_form(system: LocalSystem, ref: str,
                                                                  run: FlowRun) -> None:
    """The race the burst above can only sometimes catch, made certain: the dashboard's answer
    resumes the run, and `sbu` records a conflicting decision before the run replays. With no
    `sbu serve` running, the resumed run waits for a runner while `sbu decide` records."""
    # Killed while the run's process is still on its way out, the run would be Crashed.
    wait_until(lambda: "flow run" not in kinds(descendants(system.serve_pid)).values(),
               timeout=30, what="the suspended runs' processes to end")
    system.kill()
    with system.client() as client:
        answer = client.resume_flow_run(run.id, run_input=ui_decision())
        assert answer.status.value == "ACCEPT", answer.details
    # `sbu decide` records at once, then gives the case's run, resumed and on its way, up to 15 s
    # to reach a wait it could wake: serve starts while it waits, once the decision is recorded
    # (a process of its own, as this process's `sbu` would hold serve's start back).
    decided: list[Any] = []
    deciding = threading.Thread(target=lambda: decided.append(
        system.sbu(*cli_decide(system, ref, sin=True), check=False, own_process=True)))
    deciding.start()
    try:
        wait_until(lambda: store(system, "SELECT d.id FROM decisions d JOIN cases c ON c.id = d.case_id "
                                         "WHERE c.case_ref = ?", ref),
                   timeout=60, what="sbu decide to record")
        system.start()
    finally:
        deciding.join(timeout=180)
    [recorded] = decided
    assert recorded.returncode == 0, recorded.stderr
    moved_on(system, run.id, "dsp-decision", what="the run to move on from its decision")
    assert store(system, "SELECT d.recorded_via FROM decisions d JOIN cases c ON c.id = d.case_id "
                         "WHERE c.case_ref = ?", ref) == [("cli",)]
    assert dashboard_told(system, ref, run.id, "ACCEPT") == []
    with system.client() as client:  # and what the dashboard typed is gone from Prefect
        assert client.filter_flow_run_input(run.id, key_prefix="suspended-dsp-decision", limit=50,
                                            exclude_keys=set()) == []


def dashboard_decides_alone(system: LocalSystem, ref: str) -> None:
    run = system.wait_for_wait(ref, "dsp-decision")
    with system.client() as client:
        assert client.resume_flow_run(run.id, run_input=ui_decision()).status.value == "ACCEPT"
    system.wait_for_wait(f"{ref} rapid review", "rr-meeting-")


def moved_on(system: LocalSystem, run_id: Any, prefix: str, *, what: str) -> None:
    """Wait for the run to wait on a form past `prefix`, or to finish."""
    def past() -> bool:
        run = system.run(run_id)
        key = waiting_key(run)
        if key is not None:
            return not key.startswith(prefix)
        return run.state_type is not None and run.state_type.value == "COMPLETED"

    wait_until(past, timeout=60 + STALL_ALLOWANCE, what=what)


def sbu_told(ref: str, answer: Any, *, where: str) -> list[str]:
    """`sbu decide` lost: refused, saying where the decision was recorded, echoing nothing."""
    message = answer.stderr
    if answer.returncode != 2 or f"already recorded through {where}" not in message \
            or "conflicting decision was not recorded" not in message:
        return [f"{ref}: sbu decide lost with {answer.returncode}: {message!r}"]
    return [f"{ref}: sbu's refusal echoes {typed!r}" for typed in TYPED if typed in message]


def dashboard_told(system: LocalSystem, ref: str, run_id: Any, answer: Any) -> list[str]:
    """The dashboard's answer lost: either Prefect refused to resume a run that was no longer
    waiting, or the answer was read, refused, and the next form says so (echoing nothing)."""
    if answer != "ACCEPT":
        return []
    key = waiting_key(system.run(run_id))
    with system.client() as client:
        description = json.loads(client.read_flow_run_input(run_id, f"suspended-{key}-description"))
    if "already recorded through the `sbu` command" not in description:
        return [f"{ref}: the dashboard's answer lost, and its next form says: {description[:300]!r}"]
    return [f"{ref}: the next form echoes {typed!r}" for typed in TYPED if typed in description]

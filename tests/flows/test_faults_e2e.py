"""Faults injected for real, then the case store, the Prefect runs and the mail received checked:
`sbu serve` killed with SIGKILL at each stage of a case, the Prefect server
stopped and started again, the mail server down for a stretch of case time, and case runs that
Prefect lost, crashed or failed. After each: every case carries on, no decision is lost, no step is
done twice, no email is lost or doubled (counted by Message-ID and by subject), and nothing of a
killed serve is left running.

Two seams stop a run at a known point, so that a kill lands "mid-task" or "mid-delivery" every
time rather than by luck:
- `SBU_TEST_HOLD` (`tasks.runtime.hold_point`): a case's run stops inside a named task on its n-th
  arrival there: `read-case` (the first task a run runs) or `sync-case` (after it recorded a
  dashboard answer: the store has committed; Prefect is not yet told);
- a mail sink that holds the SMTP transaction at RCPT TO, so the sender is mid-conversation.

Each test writes one figure row per fault (`tests.figures.record_figure`). Linux only: it reads
/proc to see what a killed serve left behind.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from deployments.local import STALL_ALLOWANCE, LocalSystem, free_port, wait_until
from deployments.serve import local_prefect_server, port_is_free
from models.enums import TimerState
from models.settings import Settings
from models.tables import AuditEvent, Case, CaseRun, Decision, OutboxMessage, Timer
from tasks.mail.sink import MailSink
from tasks.prefect.runs import OUTBOX_DEPLOYMENT, RECONCILE_DEPLOYMENT
from tasks.store.db import Store
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL, SIGNATURES
from tests.figures import record_figure
from tests.flows.conftest import SystemFactory
from tests.flows.test_serve_killed_e2e import ENDS_WITHIN, descendants, kinds, still_running

pytestmark = [pytest.mark.prefect, pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = "2026-12-23"
# The outbox's retry and lease, shortened from 30 s and 5 minutes so a test sees a retry and the
# end of a dead sender's lease in seconds.
FAST_MAIL = {"SBU_OUTBOX_RETRY_SECONDS": "1", "SBU_OUTBOX_MAX_RETRY_SECONDS": "2",
             "SBU_OUTBOX_LEASE_SECONDS": "5", "SBU_SMTP_TIMEOUT_SECONDS": "30"}
MOVE_ON = 60 + STALL_ALLOWANCE
# A case day in 6 s of wall time, for the faults that wait on case time to pass.
FAST_CLOCK = 14400
# How far ahead Prefect's runner (`sbu serve`'s) takes a scheduled run and starts its process, which
# then waits on the server for the run's time: Prefect's default, which serve keeps.
PREFETCH = 10.0
LIVE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "COMPLETED")
GIVEN_UP = ("FAILED", "CRASHED", "CANCELLED")


# -- driving the system ----------------------------------------------------------------------------

def refer(system: LocalSystem, path: Path, **changes: Any) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, **changes)))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def decide(system: LocalSystem, case_ref: str) -> None:
    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.",
               *DSP_OPTIONS)


def run_deployment(system: LocalSystem, name: str, *, timeout: float = MOVE_ON) -> Any:
    """Start a run of deployment `name` now, as its schedule would, and wait for it to finish."""
    with system.client() as client:
        run = client.create_flow_run_from_deployment(client.read_deployment_by_name(name).id,
                                                     name=f"{name.split('/')[0]} (fault test)")

    def finished() -> Any:
        state = system.run(run.id).state
        return state if state is not None and state.is_final() else None

    state = wait_until(finished, timeout=timeout, what=f"the {name} run to finish")
    assert state.type.value == "COMPLETED", state
    return state


def live_runs(system: LocalSystem, name: str) -> list[Any]:
    return [run for run in system.runs_named(name)
            if run.state_type is not None and run.state_type.value not in GIVEN_UP]


def form_stored(system: LocalSystem, case_ref: str, key_prefix: str) -> None:
    """Wait until the case's run waits on a key starting with `key_prefix` and Prefect holds the
    form it waits with. A run suspends first and stores its form after: a run killed in between
    is left waiting with no form to answer, and every resume of it is rejected."""
    from tasks.prefect.resume import stored_schema, waiting_key

    run = system.wait_for_wait(case_ref, key_prefix)
    key = waiting_key(run)
    assert key is not None

    def stored() -> bool:
        with system.client() as client:
            return stored_schema(client, run.id, key) is not None

    wait_until(stored, timeout=MOVE_ON, what=f"{case_ref}'s form to be stored")


# -- reading the store and the mail ----------------------------------------------------------------

@contextmanager
def store_of(system: LocalSystem) -> Iterator[Store]:
    store = Store(system.settings().sqlalchemy_url)
    try:
        yield store
    finally:
        store.dispose()


def outbox(system: LocalSystem) -> list[OutboxMessage]:
    with store_of(system) as store, store.reading() as session:
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def all_mail_sent(system: LocalSystem, *, timeout: float = MOVE_ON) -> list[OutboxMessage]:
    """Every outbox row sent (delivery is brought forward as the outbox's sweep would run it)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = outbox(system)
        if rows and all(row.status.value == "sent" for row in rows):
            return rows
        assert not [row.id for row in rows if row.status.value == "dead"], "a dead letter"
        if time.monotonic() > deadline:
            pytest.fail(f"mail not sent after {timeout:.0f} s: "
                        f"{[(row.event, row.status.value) for row in rows if row.status.value != 'sent']}")
        run_deployment(system, OUTBOX_DEPLOYMENT)
        time.sleep(1)


def mail_ledger(system: LocalSystem) -> tuple[int, int]:
    """(lost, doubled): outbox rows sent that the SMTP server never took, and messages it took
    more than once (the same Message-ID, or the same subject, received twice)."""
    rows = all_mail_sent(system)
    assert system.sink is not None
    received = system.sink.messages
    by_id = Counter(message.message_id for message in received)
    # An escalation repeats each working day under the same subject (told apart by Message-ID);
    # every other subject is sent once.
    by_subject = Counter(message.subject for message in received if "] ESCALATION:" not in message.subject)
    lost = sum(1 for row in rows if row.message_id not in by_id)
    doubled = sum(n - 1 for n in by_id.values()) + sum(n - 1 for n in by_subject.values())
    return lost, doubled


def audit_doubled(system: LocalSystem) -> list[tuple[str, str, str]]:
    """Audit events written twice for the same case with the same detail: a step done twice."""
    with store_of(system) as store, store.reading() as session:
        events = Counter((str(case_ref), action, json.dumps(detail, sort_keys=True))
                         for case_ref, action, detail in session.execute(
                             select(Case.case_ref, AuditEvent.action, AuditEvent.detail)
                             .join(Case, Case.id == AuditEvent.case_id)))
    return [event for event, n in events.items() if n > 1]


def audit_actions(system: LocalSystem, case_ref: str) -> set[str]:
    with store_of(system) as store, store.reading() as session:
        return {str(action) for action in session.scalars(
            select(AuditEvent.action).join(Case, Case.id == AuditEvent.case_id)
            .where(Case.case_ref == case_ref))}


def decisions(system: LocalSystem) -> Counter[str]:
    with store_of(system) as store, store.reading() as session:
        return Counter(str(ref) for ref in session.scalars(
            select(Case.case_ref).join(Decision, Decision.case_id == Case.id)))


def store_runs(system: LocalSystem, case_ref: str) -> dict[str, str | None]:
    with store_of(system) as store, store.reading() as session:
        return {str(process): run_id for process, run_id in session.execute(
            select(CaseRun.process, CaseRun.flow_run_id).join(Case, Case.id == CaseRun.case_id)
            .where(Case.case_ref == case_ref))}


def timers_told_once(system: LocalSystem) -> None:
    """The store's timers are told to Prefect as one planned timer pass: one Scheduled run of
    `timer-pass` while any timer is still to fire, never two (two plans racing may make two for a
    moment; the next plan cancels one)."""
    with store_of(system) as store, store.reading() as session:
        keys = [str(key) for key in session.scalars(
            select(Timer.key).where(Timer.state == TimerState.SCHEDULED))]

    def planned() -> list[str] | None:
        with system.client() as client:
            runs = [run.name for run in client.read_flow_runs(limit=200)
                    if run.name.startswith("timer-pass") and run.state_type is not None
                    and run.state_type.value == "SCHEDULED"]
        return runs if len(runs) == 1 else None

    assert keys
    wait_until(planned, timeout=MOVE_ON, what="one timer pass planned")


def nothing_lost(system: LocalSystem, *, what: str, injected: int,
                 decided: dict[str, int] | None = None) -> None:
    """The checks every fault ends with, recorded as a figure row and then asserted."""
    lost, doubled = mail_ledger(system)
    twice = audit_doubled(system)
    made = decisions(system)
    lost_decisions = sum(max(n - made[ref], 0) for ref, n in (decided or {}).items())
    record_figure(kind="fault", what=what, injected=injected, lost=lost + lost_decisions,
                  doubled=doubled + len(twice) + sum(max(n - 1, 0) for n in made.values()))
    assert (lost, doubled) == (0, 0), [m.summary() for m in system.sink.messages] if system.sink else []
    assert twice == []
    assert lost_decisions == 0, made
    assert all(n == 1 for n in made.values()), made


# -- 1. serve killed at each stage -----------------------------------------------------------------

class HoldingSink(MailSink):
    """A mail sink that, once armed, holds the next SMTP transaction at RCPT TO until released:
    the sender is then mid-delivery, connected and waiting for the server's answer."""

    def __init__(self, directory: Path, *, port: int) -> None:
        super().__init__(directory, port=port, refuse_recipient=self._hold)
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()

    def _hold(self, address: str) -> str | None:
        if self.armed.is_set():
            self.armed.clear()
            self.holding.set()
            self.release.wait(60)  # blocks the sink's loop: the sender waits on its socket
        return None


def test_serve_killed_at_each_stage_leaves_nothing_behind_then_started_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One kill, four cases each at a different stage: waiting on the DSP decision, mid-task (its
    run stopped inside a task, the store ahead of Prefect), mid-branch (a near miss's decision
    recorded on the dashboard, the Rapid Review it starts not yet created), and mid-delivery (the
    SMTP conversation in progress). Serve starts its own Prefect server here, so the kill is seen
    to leave nothing it started running (its Prefect server, its forkserver, the runs' processes)
    and its port free at once; started again on the same port and data directory, every case
    carries on."""
    started = time.monotonic()
    # Case references are given in order of referral: 0001 waits, 0002 mid-task, 0003 mid-branch.
    # The mid-task case's run stops in the first task it runs (it reads the store). The mid-branch
    # case's run reaches sync-case only once it has recorded the dashboard's decision: a run tells
    # Prefect nothing before it waits, and the decision's replay records it and then tells.
    holds = "read-case/SR-2026-0002@1,sync-case/SR-2026-0003@1"
    port = free_port()
    system = LocalSystem(root=tmp_path / "system", prefect_port=port, case_start=CASE_START, in_process=True,
                         extra_env={**FAST_MAIL, "SBU_TEST_HOLD": holds,
                                    # Only the sweep on start repairs what the kill cut off.
                                    "SBU_CATCH_UP_SECONDS": "3600"})
    sink = HoldingSink(system.data_dir / "mail", port=int(system.env["SBU_SMTP_PORT"]))
    try:
        system.sink = sink.start()
        system.start()
        held = system.data_dir / "holds"

        waiting = refer(system, tmp_path / "w.json", external_ref="POL-STAGE-W")
        system.wait_for_wait(waiting, "dsp-decision")
        mid_task = refer(system, tmp_path / "t.json", external_ref="POL-STAGE-T")
        wait_until(lambda: (held / f"read-case-{mid_task}.held").exists(), timeout=MOVE_ON,
                   what="the run to stop mid-task")
        mid_branch = refer(system, tmp_path / "b.json", external_ref="POL-STAGE-B", category="near-miss",
                           abuse_or_neglect="suspected")
        run = system.wait_for_wait(mid_branch, "dsp-decision")
        with system.client() as client:
            answer = client.resume_flow_run(run.id, run_input={
                "sin": "no", "rapid_review": "yes", "rationale": "Learning from a near miss.",
                **SIGNATURES, "decided_on": DAY, "recorded_by": "Dana Duty"})
        assert answer.status.value == "ACCEPT", answer.details
        wait_until(lambda: (held / f"sync-case-{mid_branch}.held").exists(), timeout=MOVE_ON,
                   what="the run to stop mid-branch")
        sink.armed.set()
        mid_delivery = refer(system, tmp_path / "d.json", external_ref="POL-STAGE-D")
        assert sink.holding.wait(MOVE_ON), "no delivery reached the mail server"
        # The kill lands mid-delivery, not mid-way through a run suspending: the waiting cases
        # wait with their forms stored.
        for case_ref in (waiting, mid_delivery):
            form_stored(system, case_ref, "dsp-decision")
        assert (mid_task, mid_branch) == ("SR-2026-0002", "SR-2026-0003")
        assert store_runs(system, mid_branch).get("rapid-review", "none") is None  # started, not told
        assert sum(1 for m in outbox(system) if m.status.value == "sent") < len(outbox(system))

        family = descendants(system.serve_pid)
        kind = kinds(family)
        assert {"prefect server", "forkserver", "flow run"} <= set(kind.values())
        assert not {"temporary prefect server", "other"} & set(kind.values()), \
            [(kind[proc.pid], proc.command[:120]) for proc in family]
        system.kill()
        killed = time.monotonic()
        try:
            wait_until(lambda: not still_running(family), timeout=ENDS_WITHIN, interval=0.1,
                       what="every process serve started to end")
        except TimeoutError:
            left = [(kind[proc.pid], proc.pid) for proc in still_running(family)]
            pytest.fail(f"{ENDS_WITHIN:.0f} s after serve was killed, still running: {left}")
        finally:
            sink.release.set()  # the sender is gone: the transaction never completes
        took = time.monotonic() - killed
        assert not still_running(family)
        assert port_is_free(port)
        with capsys.disabled():
            print(f"\nserve killed: the {len(family)} processes it had started "
                  f"({', '.join(sorted(kind.values()))}) all ended within {took:.1f} s")

        system.start()  # the same port, the same data directory
        # Referred again, the case cut off mid-task is the same case, not a second one.
        assert refer(system, tmp_path / "t.json", external_ref="POL-STAGE-T") == mid_task
        for case_ref in (waiting, mid_task, mid_delivery):
            system.wait_for_wait(case_ref, "dsp-decision", timeout=MOVE_ON)
        system.wait_for_wait(f"{mid_branch} rapid review", "rr-", timeout=MOVE_ON)
        for case_ref in (waiting, mid_task, mid_delivery):
            decide(system, case_ref)
            system.wait_for_wait(case_ref, "notification-", timeout=MOVE_ON)
        # Each case has one live run per process, and the store names it.
        for case_ref in (waiting, mid_task, mid_branch, mid_delivery):
            runs = store_runs(system, case_ref)
            for process, run_id in runs.items():
                name = case_ref if process == "case" else f"{case_ref} {process.replace('-', ' ')}"
                live = live_runs(system, name)
                assert [str(r.id) for r in live] == [run_id], (case_ref, process, live)
        assert len(live_runs(system, f"{mid_branch} rapid review")) == 1
        timers_told_once(system)
        nothing_lost(system, what="sbu serve killed (SIGKILL) at 4 stages: waiting, mid-task, mid-branch, "
                     "mid-delivery", injected=4,
                     decided={waiting: 1, mid_task: 1, mid_branch: 1, mid_delivery: 1})
        with capsys.disabled():
            print(f"\nfaults: serve killed at 4 stages, carried on, {len(outbox(system))} emails once each, "
                  f"in {time.monotonic() - started:.0f} s")
    finally:
        system.stop()


# -- 5. runs Prefect lost --------------------------------------------------------------------------

def test_reconcile_repairs_runs_prefect_lost_and_alerts_the_sbu(local_system: SystemFactory, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A case run deleted, one set Crashed, one Failed as an expired pause leaves it: the sweep
    finds each, replaces it with a run that waits where the case stands, and emails the SBU once
    per lost run, naming the case reference only."""
    from prefect.states import Crashed, Failed

    started = time.monotonic()
    system = local_system(case_start=CASE_START, extra_env=FAST_MAIL)
    deleted = refer(system, tmp_path / "a.json", external_ref="POL-LOST-A")
    crashed = refer(system, tmp_path / "b.json", external_ref="POL-LOST-B")
    failed = refer(system, tmp_path / "c.json", external_ref="POL-LOST-C")
    for case_ref in (deleted, failed):
        system.wait_for_wait(case_ref, "dsp-decision")
    system.wait_for_wait(crashed, "dsp-decision")
    decide(system, crashed)  # this one is further on: it waits for the SIN
    system.wait_for_wait(crashed, "notification-")
    lost = {case_ref: store_runs(system, case_ref)["case"] for case_ref in (deleted, crashed, failed)}
    with system.client() as client:
        client.delete_flow_run(UUID(lost[deleted]))
        client.set_flow_run_state(UUID(lost[crashed]), Crashed(message="process died"), force=True)
        # What Prefect's server writes when a pause's timeout expires.
        client.set_flow_run_state(UUID(lost[failed]), force=True,
                                  state=Failed(message="The flow was paused and never resumed."))

    run_deployment(system, RECONCILE_DEPLOYMENT)
    system.wait_for_wait(deleted, "dsp-decision")
    system.wait_for_wait(failed, "dsp-decision")
    system.wait_for_wait(crashed, "notification-")
    for case_ref, old in lost.items():
        new = store_runs(system, case_ref)["case"]
        assert new is not None
        assert new != old
        assert [str(r.id) for r in live_runs(system, case_ref)] == [new]
    run_deployment(system, RECONCILE_DEPLOYMENT)  # a second sweep finds nothing to repair
    all_mail_sent(system)
    alerts = [m for m in system.sink.messages if m.subject.startswith("[SBU] Case run repaired")] \
        if system.sink else []
    assert sorted(m.subject for m in alerts) == sorted(
        f"[SBU] Case run repaired: {ref} (case)" for ref in lost)
    found = {ref: text for m in alerts for ref in lost if ref in m.subject
             for text in [m.content.decode(errors="replace")]}
    assert "Found:      missing" in found[deleted]
    assert "Found:      crashed" in found[crashed]
    assert "Found:      failed" in found[failed]
    for text in found.values():
        assert "LA-000123" not in text
        assert "POL-LOST" not in text
    with store_of(system) as store, store.reading() as session:
        repaired = list(session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "run-repaired")))
    assert sorted(d["loss"] for d in repaired) == ["crashed", "failed", "missing"]
    # The repaired cases carry on.
    decide(system, deleted)
    system.wait_for_wait(deleted, "notification-", timeout=MOVE_ON)
    nothing_lost(system, what="case runs lost by Prefect (deleted, Crashed, Failed), repaired by the sweep",
                 injected=3, decided={deleted: 1, crashed: 1})
    with capsys.disabled():
        print(f"\nfaults: 3 lost runs repaired, 3 alerts, in {time.monotonic() - started:.0f} s")


# -- 3. the mail server down -----------------------------------------------------------------------

def test_mail_server_down_for_a_stretch_of_case_time_then_back(local_system: SystemFactory, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The SMTP server is down from the referral through the reminder, the overdue alert and an
    escalation (two case days); when it is back every email arrives, once."""
    started = time.monotonic()
    # A case day in 6 s. The DSP decision is due Tuesday 12 January 2027: reminder Monday 09:00,
    # overdue Wednesday 00:01, escalation Wednesday 09:00.
    start = datetime(2027, 1, 11, 0, 0, tzinfo=UTC)
    system = local_system(time_scale=FAST_CLOCK, case_start=start, serving=False, extra_env=FAST_MAIL)
    system.sink = MailSink(system.data_dir / "mail", port=int(system.env["SBU_SMTP_PORT"]))  # not started
    case_ref = refer(system, tmp_path / "r.json", external_ref="POL-SMTP-1", incident_date="2027-01-10",
                     la_aware_date="2027-01-10", referred_at="2027-01-11T00:00:00+00:00")
    system.start()

    def events() -> Counter[str]:
        return Counter(row.event for row in outbox(system))

    def failed_attempts() -> int:
        return sum(row.attempts for row in outbox(system) if row.status.value == "pending")

    wait_until(lambda: events()["escalation"] >= 1, timeout=90,
               what="an escalation queued while mail is down")
    # Delivery was tried while the server was down, and failed (on a fast case clock the
    # escalation can be queued before the first try comes round).
    tried = wait_until(failed_attempts, timeout=MOVE_ON, what="a delivery tried while mail is down")
    assert not system.sink.messages
    down_for = time.monotonic() - started
    system.sink.start()
    decide(system, case_ref)
    system.wait_for_wait(case_ref, "notification-", timeout=MOVE_ON)
    rows = all_mail_sent(system)
    subjects = [m.subject for m in system.sink.messages]
    # (The reminder is planned only if the referral is stored before Monday 09:00, 2.25 s in.)
    assert {"referral-received", "escalation"} <= {row.event for row in rows}
    # The overdue alert went out, or (a timer pass that found it due with the escalation) was
    # recorded as superseded by it: the item's alerts collapse to the latest.
    if "overdue" not in {row.event for row in rows}:
        assert "overdue-superseded" in audit_actions(system, case_ref)
    assert any("] ESCALATION:" in s for s in subjects)
    nothing_lost(system, what="SMTP server down for two case days (reminder, overdue, escalation)",
                 injected=1, decided={case_ref: 1})
    with capsys.disabled():
        print(f"\nfaults: SMTP down {down_for:.0f} s ({tried} failed attempts), "
              f"{len(rows)} emails once each, in {time.monotonic() - started:.0f} s")


# -- 2. the Prefect server stopped and started again -----------------------------------------------

def test_prefect_server_restarted_while_cases_wait_and_timers_are_pending(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Prefect server of this test's own (the shared one serves other tests) is stopped while a
    case waits and its timers are pending, stays down across a timer's time, and is
    started again on the same port and database: the timers fire, once each, and the case
    carries on."""
    started = time.monotonic()
    port = free_port()
    home = tmp_path / "prefect-home"
    start = datetime(2027, 1, 11, 0, 0, tzinfo=UTC)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(contextlib.ExitStack())
        url = server.enter_context(local_prefect_server(Settings(data_dir=home), port=port))
        system = LocalSystem(root=tmp_path / "system", api_url=url, time_scale=FAST_CLOCK, case_start=start,
                             extra_env=FAST_MAIL, in_process=True)
        stack.callback(system.stop)
        first = refer(system, tmp_path / "a.json", external_ref="POL-PFS-1", incident_date="2027-01-10",
                      la_aware_date="2027-01-10", referred_at="2027-01-11T00:00:00+00:00")
        second = refer(system, tmp_path / "b.json", external_ref="POL-PFS-2", incident_date="2027-01-10",
                       la_aware_date="2027-01-10", referred_at="2027-01-11T00:00:00+00:00")
        system.start()
        for case_ref in (first, second):
            system.wait_for_wait(case_ref, "dsp-decision")
        clock = system.settings().clock()

        def timers() -> list[tuple[str, str, datetime]]:
            with store_of(system) as store, store.reading() as session:
                return [(str(key), str(state.value), clock.wall_time_for(fire_at))
                        for key, state, fire_at in session.execute(
                            select(Timer.key, Timer.state, Timer.fire_at).order_by(Timer.fire_at))]

        def next_pending() -> tuple[str, datetime] | None:
            """The next timer to fire, if it is due a little later than serve's runner looks ahead
            and its pass is planned: the server stops with the pass still Scheduled on it, not yet
            taken by the runner."""
            pending = [(k, at) for k, st, at in timers() if st == "scheduled"]
            if not pending:
                return None
            key, at = pending[0]
            if not PREFETCH + 3 < (at - datetime.now(UTC)).total_seconds() < PREFETCH + 20:
                return None
            with system.client() as client:
                planned = [run.state.state_details.scheduled_time for run in client.read_flow_runs(limit=200)
                           if run.name.startswith("timer-pass") and run.state is not None
                           and run.state.type.value == "SCHEDULED"]
            return (key, at) if any(when is not None and abs(when - at) <= timedelta(seconds=1)
                                    for when in planned) else None

        # The next timer (an escalation comes each working day, 6 s) is due while the server is down,
        # and its pass waits out the outage Scheduled, as a run the server holds. (A pass the runner
        # has already taken waits in its own process, on the server, and dies if the outage outlasts
        # the Prefect client's retries: that pass is replaced only by the reconcile sweep.)
        key, due_at = wait_until(next_pending, timeout=MOVE_ON, what="a timer due soon, its pass planned")
        fired_before = sum(1 for t in timers() if t[1] == "fired")

        server.close()  # the Prefect server stops (SIGTERM); its database stays
        stopped = time.monotonic()
        time.sleep(max((due_at - datetime.now(UTC)).total_seconds(), 0) + 2)
        # In `server` again, which closes after serve has stopped: serve stopped with no server to
        # tell waits out the Prefect client's retries (half a minute) before it ends.
        assert server.enter_context(local_prefect_server(Settings(data_dir=home), port=port)) == url
        down_for = time.monotonic() - stopped

        # The timer due during the outage fires late (or, if the outage also passed a later alert of
        # its item, is superseded by it: recorded, not sent), and the timers after it on time.
        wait_until(lambda: dict((k, st) for k, st, _ in timers())[key] != "scheduled", timeout=MOVE_ON,
                   what="the timer due while Prefect was down to fire")
        wait_until(lambda: sum(1 for t in timers() if t[1] == "fired") >= fired_before + 3, timeout=MOVE_ON,
                   what="the timers after it to fire")
        decide(system, first)
        system.wait_for_wait(first, "notification-", timeout=MOVE_ON)
        for case_ref in (first, second):
            assert len(live_runs(system, case_ref)) == 1
        timers_told_once(system)
        nothing_lost(system, injected=1, decided={first: 1},
                     what=f"Prefect server stopped {down_for:.0f} s with cases waiting and timers due")
    with capsys.disabled():
        print(f"\nfaults: Prefect server down {down_for:.0f} s, timers fired once each, "
              f"in {time.monotonic() - started:.0f} s")

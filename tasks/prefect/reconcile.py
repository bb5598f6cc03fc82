"""Repairing whatever the store and Prefect disagree on: the catch-up of what the store committed
while Prefect could not be told, and the full reconciliation sweep.

The sweep compares in bulk and acts only on the differences. The store says in one query which run
each case should have; Prefect is asked, in a few paged queries filtered by those runs' ids and by
state, for the runs that may need something done: those given up (failed, crashed, cancelled), and
on serve's start those a stopped serve left running. One count says whether any run the store
expects is missing altogether. A run suspended on a wait needs looking at only if its case changed
since the last sweep that looked (only a change answers a wait, and every change writes an audit
event); that sweep's start is kept in a Prefect variable, so a fresh Prefect database, like serve's
start, has every suspended run looked at. With nothing to repair that is a handful of requests
whatever the number of cases; with something to repair, each case that differs is repaired as one
change would be, a bounded number in each sweep.

The catch-up and the sweep hold the same store lock (`SWEEP_LOCK`), so neither ever runs beside
itself or the other on the same work, whichever processes they run in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from models.enums import CaseStatus
from models.state import CaseState
from tasks.prefect.connection import LARGE_PAGE
from tasks.prefect.resume import Resumed, resume_if_waiting, resume_waiting
from tasks.prefect.runs import ensure_runs, trigger_delivery
from tasks.prefect.timers import PASS_LATE, replace_lost_pass, sync_timers
from tasks.service import CaseService
from tasks.store.locks import store_lock

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.objects import FlowRun, StateType

log = logging.getLogger("sbu.reconcile")

SWEEP_LOCK = "prefect-sweep"
# How long a sweep waits for the lock before leaving the work to whoever holds it (a catch-up round
# takes a second or two; another sweep is doing the same work).
SWEEP_LOCK_WAIT_SECONDS = 30.0
# Prefect's server refuses a page larger than its PREFECT_SERVER_API_DEFAULT_LIMIT (200 unless
# set); the server `sbu serve` starts allows `LARGE_PAGE`, and a server that refuses it is asked
# in pages of `PAGE` from then on.
PAGE = 200
# Prefect's server puts every id of an `any_` filter in one SQL statement; SQLite takes 32,766
# parameters in one statement, so ids are sent in chunks well under that.
IDS_PER_REQUEST = 10_000
# How far before the last checking sweep began a change still counts as new: a run reads the store
# a moment before it suspends, so a change in that moment is answered by a run not yet suspended
# when the sweep looked (wall seconds; it also covers clocks that differ between machines).
CHANGE_MARGIN_SECONDS = 300.0
# Cases repaired in one sweep, and how many at a time: onboarding thousands of cases, or a fresh
# Prefect database, is repaired over several sweeps, each bounded, rather than in one flood of
# runs that would hold every case run's slot for hours.
REPAIR_BATCH = 50
REPAIRS_PER_SWEEP = 500

_page_size = LARGE_PAGE


@dataclass
class SweepCounts:
    orphans: int = 0
    runs_created: int = 0
    runs_resumed: int = 0
    runs_cancelled: int = 0
    timer_runs_changed: int = 0
    deferred: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"orphans": self.orphans, "runs_created": self.runs_created,
                "runs_resumed": self.runs_resumed, "runs_cancelled": self.runs_cancelled,
                "timer_runs_changed": self.timer_runs_changed, "deferred": self.deferred,
                "skipped": self.skipped}


@contextmanager
def sweep_lock(service: CaseService, *, wait_seconds: float = 0.0) -> Iterator[bool]:
    """The lock the catch-up and the sweep share; yields whether it is held."""
    with store_lock(service.store, SWEEP_LOCK, wait_seconds=wait_seconds) as held:
        yield held


def tell_untold(client: SyncPrefectClient, service: CaseService, *, pass_late: timedelta = PASS_LATE) -> int:
    """Tell Prefect what the store committed while Prefect could not be told (its server busy or
    down when `sbu` made the change): the run of a process a case started, a timer to schedule or
    cancel, a timer pass lost (`timers.replace_lost_pass`). Only store reads when there is nothing
    to tell, so `sbu serve` runs it every few seconds; the full reconciliation sweep, which also
    reads runs from Prefect, runs rarely.
    Returns how many things it told; nothing while a sweep holds the lock (it tells all of it).
    At most `REPAIR_BATCH` cases a round: an import of thousands of cases is told over many rounds,
    each short, so the lock is never held long and the runs are not created in one flood."""
    with sweep_lock(service) as held:
        if not held:
            return 0
        told = 0
        for case_ref in service.cases_with_untold_runs()[:REPAIR_BATCH]:
            ensure_runs(client, service, case_ref)
            told += 1
        if told:
            trigger_delivery(client)  # what the changes queued: their runs only read the store and wait
        if service.untold_timers():
            told += sync_timers(client, service)
        else:
            told += replace_lost_pass(client, service, late=pass_late)
        return told


def reconcile(client: SyncPrefectClient, service: CaseService, *, serve_started: datetime | None = None,
              lock_wait_seconds: float = SWEEP_LOCK_WAIT_SECONDS) -> dict[str, int]:
    """Repair any disagreement between the store and Prefect: runs missing for open cases (or
    given up by Prefect), timers not scheduled or not cancelled, runs left waiting on a step the
    store shows done. On serve's start, runs a stopped serve left mid-way are replaced too.
    Returns what it did; `skipped` is 1 when another sweep or the catch-up held the work."""
    with sweep_lock(service, wait_seconds=lock_wait_seconds) as held:
        if not held:
            log.info("reconcile: another sweep or the catch-up holds the store's sweep lock; skipped")
            return SweepCounts(skipped=1).as_dict()
        return _sweep(client, service, serve_started=serve_started).as_dict()


@dataclass(frozen=True)
class _Expected:
    case_ref: str
    closed: bool
    process: str


def _sweep(client: SyncPrefectClient, service: CaseService, *, serve_started: datetime | None) -> SweepCounts:
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    began = service.clock.now()
    counts = SweepCounts()
    expected: dict[UUID, _Expected] = {}
    to_repair: set[str] = set()
    for case_ref, status, process, run_id in service.expected_runs():
        closed = status is CaseStatus.CLOSED
        if run_id is None:
            if not closed:
                to_repair.add(case_ref)  # a run Prefect was never told of
            continue
        expected[UUID(run_id)] = _Expected(case_ref, closed, process)
    open_runs = [run_id for run_id, seen in expected.items() if not seen.closed]

    # Runs Prefect gave up on, and on serve's start those a stopped serve left running.
    given_up = [StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
    if serve_started is not None:
        given_up += [StateType.RUNNING, StateType.PENDING]
    # Read to the end before acting, so that no state changed here moves a run between pages.
    for run in list(_runs(client, list(expected), given_up)):
        mine, state = expected[run.id], run.state
        if state is None:
            continue
        if state.type in (StateType.RUNNING, StateType.PENDING):
            if serve_started is not None and state.timestamp < serve_started:
                # Left running by a stopped serve: with one serve per store nothing else runs it.
                client.set_flow_run_state(run.id, Crashed(message="left running by a stopped serve"),
                                          force=True)
                counts.orphans += 1
                if not mine.closed:
                    to_repair.add(mine.case_ref)
        elif not mine.closed:
            to_repair.add(mine.case_ref)  # failed, crashed or cancelled: replaced
    # Runs missing altogether (deleted, or a Prefect database started afresh). A closed case's run
    # is history: Prefect may have deleted it, and nothing is done about that.
    if _count_present(client, open_runs) < len(open_runs):
        present = _present(client, open_runs)
        to_repair |= {expected[run_id].case_ref for run_id in open_runs if run_id not in present}

    # Runs suspended on a wait the store has since answered. Only a change to the store answers a
    # wait, and every change writes an audit event, so only the runs of cases changed since the last
    # sweep that checked them need looking at (all of them on serve's start, or the first time).
    checked_through = None if serve_started is not None else _checked_through(client, service)
    if checked_through is None:
        suspect = open_runs
    else:
        margin = timedelta(seconds=CHANGE_MARGIN_SECONDS / service.clock.wall_seconds(1.0))
        changed = service.cases_changed_since(checked_through - margin)
        suspect = [run_id for run_id in open_runs if expected[run_id].case_ref in changed]
    paused = list(_runs(client, suspect, [StateType.PAUSED])) if suspect else []
    _resume_answered(client, service, paused, expected, to_repair, counts)

    _repair(client, service, sorted(to_repair), counts)
    counts.timer_runs_changed = sync_timers(client, service)
    if not counts.deferred:
        # A case left to the next sweep has not been looked at: its changes stay new until it is.
        _mark_checked(client, service, began)
    return counts


def _watermark_name(service: CaseService) -> str:
    """The variable's name: the partnership's, and its store's, since a Prefect server may serve
    several, and a store put back from a backup under another name must be looked at afresh."""
    store = hashlib.sha256(service.store.engine.url.render_as_string(hide_password=True).encode())
    return f"sbu-sweep-checked-{service.settings.partnership}-{store.hexdigest()[:12]}"


def _checked_through(client: SyncPrefectClient, service: CaseService) -> datetime | None:
    """When (case time) the last sweep that looked at every suspended run it had to began; None
    if none has (a Prefect database started afresh has no record of one)."""
    variable = client.read_variable_by_name(_watermark_name(service))
    if variable is None or not isinstance(variable.value, str):
        return None
    try:
        return datetime.fromisoformat(variable.value)
    except ValueError:
        return None


def _mark_checked(client: SyncPrefectClient, service: CaseService, began: datetime) -> None:
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    name, value = _watermark_name(service), began.isoformat()
    try:
        client.update_variable(VariableUpdate(name=name, value=value))
    except Exception:  # noqa: BLE001 - Prefect's ObjectNotFound, or its HTTP error, for a first sweep
        client.create_variable(VariableCreate(name=name, value=value))


def _resume_answered(client: SyncPrefectClient, service: CaseService, paused: Sequence[FlowRun],
                     expected: dict[UUID, _Expected], to_repair: set[str], counts: SweepCounts) -> None:
    """Resume each suspended run whose wait the store has answered; the states of the cases they
    belong to are read in one go."""
    if not paused:
        return
    waiting = sorted({expected[run.id].case_ref for run in paused})
    states: dict[str, CaseState] = {view.case_ref: view for view in service.case_views_of(waiting)}
    for run in paused:
        mine = expected[run.id]
        if mine.case_ref in to_repair or mine.case_ref not in states:
            continue  # its case is repaired as a whole below
        outcome = resume_waiting(client, service, run, process=service.registry.process(mine.process),
                                 case_ref=mine.case_ref, state=states[mine.case_ref])
        counts.runs_resumed += outcome is Resumed.RESUMED
        counts.runs_cancelled += outcome is Resumed.CANCELLED


def _repair(client: SyncPrefectClient, service: CaseService, case_refs: Sequence[str],
            counts: SweepCounts) -> None:
    """Make each case's runs match the store, as a change to it would; at most `REPAIRS_PER_SWEEP`
    cases, in batches of `REPAIR_BATCH`, the rest left to the next sweep."""
    now, later = case_refs[:REPAIRS_PER_SWEEP], case_refs[REPAIRS_PER_SWEEP:]
    for start in range(0, len(now), REPAIR_BATCH):
        batch = now[start:start + REPAIR_BATCH]
        for case_ref in batch:
            before = service.case_view(case_ref).runs
            runs = ensure_runs(client, service, case_ref)
            counts.runs_created += sum(1 for process, run_id in runs.items()
                                       if before.get(process) != str(run_id))
            # Its other runs were left to this repair: resumed here if the store answered them.
            outcomes = [resume_if_waiting(client, service, run_id, process=service.registry.process(process),
                                          case_ref=case_ref) for process, run_id in runs.items()]
            counts.runs_resumed += outcomes.count(Resumed.RESUMED)
            counts.runs_cancelled += outcomes.count(Resumed.CANCELLED)  # replaced by the next sweep
        log.info("reconcile: repaired %d of %d cases", start + len(batch), len(case_refs))
    counts.deferred = len(later)


def _runs(client: SyncPrefectClient, ids: Sequence[UUID], states: Sequence[StateType]) -> Iterator[FlowRun]:
    """Those of the runs `ids` in one of `states`, page by page."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    for chunk in _chunks(ids):
        wanted = FlowRunFilter(id=FlowRunFilterId(any_=list(chunk)),
                               state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states))))
        yield from _paged(client, wanted, FlowRunSort.ID_DESC)


def _paged(client: SyncPrefectClient, wanted: FlowRunFilter, sort: object) -> Iterator[FlowRun]:
    global _page_size
    import httpx

    offset = 0
    while True:
        try:
            page = client.read_flow_runs(flow_run_filter=wanted, sort=sort,  # type: ignore[arg-type]
                                         limit=_page_size, offset=offset)
        except httpx.HTTPStatusError as error:
            # A server with Prefect's default page limit refuses a larger page; ask in its size.
            if error.response.status_code != httpx.codes.UNPROCESSABLE_ENTITY or _page_size == PAGE:
                raise
            _page_size = PAGE
            continue
        yield from page
        if len(page) < _page_size:
            return
        offset += _page_size


def _count_present(client: SyncPrefectClient, ids: Sequence[UUID]) -> int:
    """How many of `ids` Prefect has (a run deleted, or a Prefect database started afresh, is not)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return sum(client.count_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(chunk))))
               for chunk in _chunks(ids))


def _present(client: SyncPrefectClient, ids: Sequence[UUID]) -> set[UUID]:
    """Which of `ids` Prefect has; asked only when the count says some are missing."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    found: set[UUID] = set()
    for chunk in _chunks(ids):
        found |= {run.id for run in _paged(client, FlowRunFilter(id=FlowRunFilterId(any_=list(chunk))),
                                          FlowRunSort.ID_DESC)}
    return found


def _chunks(ids: Sequence[UUID]) -> Iterator[Sequence[UUID]]:
    for start in range(0, len(ids), IDS_PER_REQUEST):
        yield ids[start:start + IDS_PER_REQUEST]

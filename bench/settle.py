"""When a system has settled: what the benchmark waits for after a start, defined from the case
store and Prefect.

Settled means all three:
1. Every open case's started processes (`CaseState.runs`) have a flow run in Prefect, the one the
   store names, and it is where the store says the process stands: suspended (Paused) on the key
   of its current wait (`Process.current_wait(state).base_key(state)`; an answer refused is asked
   again under that key with `-2`, `-3` after it, which counts), or Completed when the process has
   nothing open.
2. No run of a case process is Scheduled, Pending or Running: nothing is on its way to a wait.
3. Every timer is in place, as the build's timer mode defines it (`bench.build`).
A case is settled when each of its processes is (1). The check reads the store once and Prefect in
pages of 200 runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from bench.build import Build, TimerCheck, read_runs
from models.enums import CaseStatus
from models.registry import Registry

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from tasks.service import CaseService

ACTIVE = ("SCHEDULED", "PENDING", "RUNNING")


@dataclass(frozen=True)
class SettleCheck:
    open_cases: int
    settled_cases: int
    processes: int
    processes_in_place: int
    active_case_runs: int
    timers: TimerCheck
    problems: Counter[str] = field(default_factory=Counter)

    @property
    def settled(self) -> bool:
        return (self.settled_cases == self.open_cases and self.active_case_runs == 0
                and self.timers.ok)

    @property
    def fraction(self) -> float:
        return self.settled_cases / self.open_cases if self.open_cases else 1.0

    def summary(self) -> str:
        worst = ", ".join(f"{kind} {count}" for kind, count in self.problems.most_common(3))
        timer_worst = ", ".join(f"{kind} {count}" for kind, count in
                                sorted(self.timers.problems.items(), key=lambda kv: -kv[1])[:2])
        return (f"cases settled {self.settled_cases:,}/{self.open_cases:,}; process runs in place "
                f"{self.processes_in_place:,}/{self.processes:,}; case runs on their way "
                f"{self.active_case_runs:,}; timers in place {self.timers.in_place:,}/{self.timers.total:,}"
                + (f"; not yet: {worst}" if worst else "")
                + (f"; timers: {timer_worst}" if timer_worst else ""))


def key_matches(key: str | None, base: str) -> bool:
    """Whether a run suspended on `key` waits on the wait keyed `base` (an attempt after a refused
    answer adds `-2`, `-3`, ...)."""
    if key is None:
        return False
    if key == base:
        return True
    tail = key.removeprefix(f"{base}-")
    return tail != key and tail.isdigit()


@dataclass(frozen=True)
class ExpectedWaits:
    """How many of the open cases' process runs the store says should be suspended on a wait, and
    how many completed. The store does not change while a system settles (nobody records), so it
    is read once."""

    suspended: int
    completed: int


def expected_waits(service: CaseService) -> ExpectedWaits:
    suspended = completed = 0
    for view in service.list_cases():
        if view.status is CaseStatus.CLOSED:
            continue
        for process_id in view.runs:
            if service.registry.process(process_id).current_wait(view) is None:
                completed += 1
            else:
                suspended += 1
    return ExpectedWaits(suspended, completed)


@dataclass(frozen=True)
class RunCounts:
    """Case process runs in Prefect by state: a cheap look at how settling goes."""

    suspended: int
    completed: int
    active: int

    def may_be_settled(self, expected: ExpectedWaits) -> bool:
        """Necessary for settled (so the full check is worth its reads), not sufficient: these
        count runs, not which run of which case waits on which key."""
        return (self.active == 0 and self.suspended >= expected.suspended
                and self.completed >= expected.completed)

    def summary(self, expected: ExpectedWaits) -> str:
        return (f"case runs suspended {self.suspended:,}/{expected.suspended:,}, completed "
                f"{self.completed:,}/{expected.completed:,}, on their way {self.active:,}")


def run_counts(client: SyncPrefectClient, process_ids: tuple[str, ...]) -> RunCounts:
    from prefect.client.schemas.objects import StateType

    def count(*states: StateType) -> int:
        return _count(client, process_ids, states)

    return RunCounts(suspended=count(StateType.PAUSED), completed=count(StateType.COMPLETED),
                     active=count(*(StateType(name) for name in ACTIVE)))


def _count(client: SyncPrefectClient, process_ids: tuple[str, ...], states: tuple[object, ...]) -> int:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    return client.count_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=list(process_ids))),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=list(states)))))


def active_case_runs(client: SyncPrefectClient, process_ids: tuple[str, ...]) -> int:
    from prefect.client.schemas.objects import StateType

    return _count(client, process_ids, tuple(StateType(name) for name in ACTIVE))


def check(client: SyncPrefectClient, service: CaseService, build: Build, *, now: datetime) -> SettleCheck:
    """How far the system at `client` and `service` has settled, at case time `now`."""
    from prefect.client.schemas.objects import FlowRun, StateType

    registry: Registry = service.registry
    views = [view for view in service.list_cases() if view.status is not CaseStatus.CLOSED]
    expected: list[tuple[str, str, str | None, str | None]] = []  # case, process, run id, base key
    for view in views:
        for process_id, run_id in view.runs.items():
            wait = registry.process(process_id).current_wait(view)
            expected.append((view.case_ref, process_id, run_id,
                             wait.base_key(view) if wait is not None else None))
    runs = read_runs(client, [UUID(run_id) for _, _, run_id, _ in expected if run_id is not None])
    problems: Counter[str] = Counter()
    unsettled: set[str] = set()
    in_place = 0
    for case_ref, process_id, run_id, base in expected:
        run = runs.get(UUID(run_id)) if run_id is not None else None
        problem = None
        if run_id is None:
            problem = "no run in the store"
        elif not isinstance(run, FlowRun):
            problem = "run missing in Prefect"
        else:
            state = run.state.type if run.state is not None else None
            if base is None:
                if state is not StateType.COMPLETED:
                    problem = f"{process_id} run {_name(state)}, should be completed"
            elif state is not StateType.PAUSED:
                problem = f"{process_id} run {_name(state)}"
            elif run.state is not None and not key_matches(run.state.state_details.pause_key, base):
                problem = f"{process_id} run paused on another key"
        if problem is None:
            in_place += 1
        else:
            problems[problem] += 1
            unsettled.add(case_ref)
    timers = build.timers.check(client, service, now=now)
    return SettleCheck(open_cases=len(views), settled_cases=len(views) - len(unsettled),
                       processes=len(expected), processes_in_place=in_place,
                       active_case_runs=active_case_runs(client, build.process_ids), timers=timers,
                       problems=problems)


def _name(state: object) -> str:
    value = getattr(state, "value", None)
    return str(value).lower() if value is not None else "without a state"

"""What differs between builds of the engine, in one place: how its durable timers run.

Which build this is is read from the registry's system flows, not from a version number:
- a system flow named `deadline-check` (tagged "timer") means one flow run per timer, each
  scheduled in Prefect at the timer's time (`PerTimerRuns`);
- any other system flow tagged "timer" is a timer pass: one flow run fires every timer due, from
  the store, and the next pass is scheduled (`TimerPass`).
Everything else the benchmark needs is the same on every build: the case service, the `sbu`
commands, the registry's processes and waits, and Prefect's API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from models.clock import Clock, FixedClock
from models.registry import Registry, SystemFlow

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

    from tasks.service import CaseService, TimerView

CHUNK = 200  # runs read from Prefect per request (its default page)


@dataclass(frozen=True, slots=True)
class TimerCheck:
    """How the timers stand: `in_place` of `total` are as they should be; `problems` says why the
    rest are not, by kind."""

    in_place: int
    total: int
    problems: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.in_place == self.total and not self.problems


class TimerMode(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def flow(self) -> SystemFlow: ...

    def check(self, client: SyncPrefectClient, service: CaseService, *, now: datetime) -> TimerCheck:
        """Whether every timer is in place at case time `now` (see each mode)."""
        ...

    @property
    def one_run_a_pass(self) -> bool:
        """Whether the timers due at one moment are fired by one flow run."""
        ...

    def bring_due(self, client: SyncPrefectClient, service: CaseService, *, clock: Clock,
                  at: datetime) -> None:
        """After a restart on a new case clock: make the timers due at case time `at` come due
        at its wall time on `clock`, as they would had the system run on this clock all along."""
        ...

    def fire_in_store(self, service: CaseService, clock: FixedClock, *, due: list[TimerView]) -> int:
        """Seeding: fire the timers `due`, in order, each at its own time on `clock`, through the
        case service alone, as the build would have when they came due; how many alerts went out."""
        ...


def read_runs(client: SyncPrefectClient, ids: Iterable[UUID]) -> dict[UUID, object]:
    """The flow runs with `ids`, read in pages; a run Prefect does not have is left out."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    wanted = list(dict.fromkeys(ids))
    found: dict[UUID, object] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)),
                                         limit=len(chunk)):
            found[run.id] = run
    return found


def scheduled_timers(service: CaseService, *, due_by: datetime | None = None) -> int:
    """How many timers the store has waiting to fire (due by `due_by`, if given): one COUNT,
    where `CaseService.timers` reads every row, seconds at 10,000 cases."""
    from sqlalchemy import func, select

    from models.enums import TimerState
    from models.schema import timers

    query = select(func.count()).select_from(timers).where(timers.c.state == TimerState.SCHEDULED)
    if due_by is not None:
        query = query.where(timers.c.fire_at <= due_by)
    with service.store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


# A timer fires when its time comes; one due this recently may still be on its way.
FIRING_GRACE = timedelta(minutes=2)
# Timers this soon after the moment brought due are brought with it.
BRING_DUE_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class PerTimerRuns:
    """One `deadline-check` flow run per timer, scheduled in Prefect at the timer's wall time.

    In place: every timer the store has scheduled has its run, and that run is Scheduled in
    Prefect; and no timer due more than `FIRING_GRACE` ago is still waiting to fire."""

    flow: SystemFlow
    name: str = "a deadline-check flow run per timer"

    def check(self, client: SyncPrefectClient, service: CaseService, *, now: datetime) -> TimerCheck:
        from prefect.client.schemas.objects import FlowRun, StateType

        timers = service.timers()
        problems: dict[str, int] = {}
        runs = read_runs(client, [UUID(t.flow_run_id) for t in timers if t.flow_run_id is not None])
        in_place = 0
        for timer in timers:
            if timer.fire_at <= now - FIRING_GRACE:
                kind = "due but not fired"
            elif timer.flow_run_id is None:
                kind = "no run scheduled"
            else:
                run = runs.get(UUID(timer.flow_run_id))
                state = run.state.type if isinstance(run, FlowRun) and run.state is not None else None
                if state is StateType.SCHEDULED or (state is not None and timer.fire_at <= now):
                    in_place += 1
                    continue
                kind = "run missing in Prefect" if run is None else \
                    f"run {state.value.lower() if state else 'without a state'}"
            problems[kind] = problems.get(kind, 0) + 1
        return TimerCheck(in_place, len(timers), problems)

    @property
    def one_run_a_pass(self) -> bool:
        return False

    def bring_due(self, client: SyncPrefectClient, service: CaseService, *, clock: Clock,
                  at: datetime) -> None:
        """Each timer due by `at` (and a little after) already has its run, scheduled at the wall
        time the old case clock gave it: move each to the wall time `clock` gives it."""
        from prefect.states import Scheduled

        for timer in service.timers():
            if timer.fire_at <= at + BRING_DUE_MARGIN and timer.flow_run_id is not None:
                client.set_flow_run_state(UUID(timer.flow_run_id),
                                          Scheduled(scheduled_time=clock.wall_time_for(timer.fire_at)),
                                          force=True)

    def fire_in_store(self, service: CaseService, clock: FixedClock, *, due: list[TimerView]) -> int:
        # Looked up by name: a build with a timer pass has no `fire_timer`.
        fire = getattr(service, "fire_timer")  # noqa: B009
        fired = 0
        for timer in due:
            clock.advance(timer.fire_at - clock.now())
            fired += bool(fire(timer.key).fired)
        return fired


@dataclass(frozen=True)
class TimerPass:
    """A timer pass: one flow run fires every timer due, from the store.

    In place: the pass's deployment has a run scheduled (or a schedule of its own), and no timer
    due more than `FIRING_GRACE` ago is still waiting to fire."""

    flow: SystemFlow
    name: str = "a timer pass (one flow run fires every timer due)"

    def check(self, client: SyncPrefectClient, service: CaseService, *, now: datetime) -> TimerCheck:
        late = scheduled_timers(service, due_by=now - FIRING_GRACE)
        scheduled = self.flow.every_seconds is not None or self.flow.cron is not None \
            or _scheduled_runs(client, self.flow) > 0
        problems: dict[str, int] = {}
        if late:
            problems["due but not fired"] = late
        if not scheduled:
            problems["no pass scheduled"] = 1
        total = scheduled_timers(service)
        return TimerCheck(total - late if scheduled else 0, total, problems)

    @property
    def one_run_a_pass(self) -> bool:
        return True

    def bring_due(self, client: SyncPrefectClient, service: CaseService, *, clock: Clock,
                  at: datetime) -> None:
        """A pass run at the wall time of `at` on `clock`, beside the one the build plans itself:
        one planned under the old case clock would come hours late. A pass finding nothing due
        fires nothing, so two are harmless."""
        from prefect.states import Scheduled

        deployment = client.read_deployment_by_name(self.flow.deployment)
        client.create_flow_run_from_deployment(
            deployment.id, name=f"{self.flow.name} (bench, {at:%H:%M})",
            state=Scheduled(scheduled_time=clock.wall_time_for(at)))

    def fire_in_store(self, service: CaseService, clock: FixedClock, *, due: list[TimerView]) -> int:
        # One pass at each moment a timer came due, as the pass planned for it would have run.
        fire_due = getattr(service, "fire_due_timers")  # noqa: B009 - a build with a pass has it
        fired = 0
        for moment in sorted({timer.fire_at for timer in due}):
            clock.advance(moment - clock.now())
            fired += int(getattr(fire_due(), "sent", 0))
        return fired


def runs_started(client: SyncPrefectClient, flow: SystemFlow, *, since: datetime,
                 limit: int = 5_000) -> list[FlowRun]:
    """The runs of `flow`'s deployment that started at or after `since` (wall time)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )

    found: list[FlowRun] = []
    while len(found) < limit:
        page = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[flow.name])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since, is_null_=False)),
            limit=CHUNK, offset=len(found))
        found += page
        if len(page) < CHUNK:
            break
    return found


def _scheduled_runs(client: SyncPrefectClient, flow: SystemFlow) -> int:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return client.count_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[flow.name])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))


@dataclass(frozen=True)
class Build:
    """What the benchmark needs to know of the build under test."""

    timers: TimerMode
    sweep: SystemFlow
    digest: SystemFlow
    process_ids: tuple[str, ...]

    @property
    def describe(self) -> str:
        return f"timers: {self.timers.name}; sweep: {self.sweep.name}; digest: {self.digest.name}"


def detect(registry: Registry) -> Build:
    """The build, from its registry's system flows (see the module docstring)."""
    flows = registry.system_flows
    timer_flows = [flow for flow in flows if "timer" in flow.tags]
    if not timer_flows:
        raise ValueError("this build has no system flow tagged 'timer': the benchmark cannot tell "
                         "how its timers run")
    per_timer = next((flow for flow in timer_flows if flow.name == "deadline-check"), None)
    timers: TimerMode = PerTimerRuns(per_timer) if per_timer is not None else TimerPass(timer_flows[0])
    sweep = next((flow for flow in flows if "sweep" in flow.tags), None)
    digest = next((flow for flow in flows if flow.name == "daily-digest"), None)
    if sweep is None or digest is None:
        raise ValueError("this build has no system flow tagged 'sweep' or none named 'daily-digest'")
    return Build(timers=timers, sweep=sweep, digest=digest,
                 process_ids=tuple(process.id for process in registry.processes))

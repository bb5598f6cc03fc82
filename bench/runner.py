"""One configuration of the benchmark, step by step, each step capped and reporting as it goes.

1. Seed N open cases through the case service (`bench.seed`), and bring the store to its moment.
2. Start the system on a fresh Prefect database; time until it has settled (`bench.settle`), with
   the CPU-seconds it used, per case run and per flow run.
3. With nothing due and every case waiting: the CPU of all the system's processes over a minute,
   as % of one core; its processes and resident memory.
4. One sweep with nothing to repair, and the daily digest: each a run of its deployment, timed from
   its start to its end in Prefect.
5. `sbu status`, `sbu cases` and `sbu timetable` (median of 5) beside `python -c pass`.
6. An ordinary restart (Prefect's database kept): time until settled again.
7. The 09:00 alert pass: the system restarted on a case clock a little before 09:00 on the next
   working day, when every overdue item is escalated (and reminders go out); at 09:00 a sweep is
   started too, and decisions are recorded with `sbu record` on 20 cases one after another, each
   timed from its commit (its audit event) to its case's run Running and to its next wait.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bench import settle
from bench.build import Build, detect, runs_started, scheduled_timers
from bench.figures import ConfigResult, Figure, Measuring
from bench.mix import SEEDED_AS_OF, CasePlan, Kind, Move, Stage
from bench.procstat import read_trees
from bench.progress import Progress, wait_until
from bench.seed import SeedCache, Seeder, catch_up
from bench.system import PostgresWorkers, ServeOnSqlite, System
from deployments.local import SBU
from models.calendar import london_date, london_time
from models.settings import Settings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

    from models.clock import Clock
    from tasks.service import CaseService

TARGETS = {
    "settle_fresh": "< 300 s for 1,000 cases on SQLite; < 3,600 s for 10,000 on PostgreSQL, two workers",
    "decision_p95": "< 2 s with 10,000 cases waiting and the alert pass running",
    "sweep": "< 2 s over 10,000 cases",
    "timer_pass": "< 60 s over 1,000 due items",
    "idle_cpu": "< 5% of a core with 10,000 cases waiting",
}
# The system starts a minute after the store's moment: nothing falls due for twelve hours.
START_AFTER_SEED = timedelta(minutes=1)
PASS_TIME = (9, 0)
_NINE = datetime(2000, 1, 1, *PASS_TIME).time()
PROBES = 20
CLI_RUNS = 5
# While settling, the store and every case run are read in full at most this often (seconds).
FULL_CHECK_EVERY = 60.0


@dataclass(frozen=True)
class Caps:
    """How long each step may take (seconds); a figure that reaches its cap says so."""

    seed: float
    settle: float
    restart: float
    run: float = 900.0  # a sweep's or the digest's run
    idle_window: float = 60.0
    cli: float = 120.0
    alert_pass: float = 900.0
    probe: float = 90.0
    lead_min: float = 90.0
    lead_max: float = 600.0

    @classmethod
    def for_cases(cls, n: int, **overrides: float) -> Caps:
        settle_cap = 900.0 if n <= 100 else 1_200.0 if n <= 1_000 else 3_600.0
        defaults: dict[str, float] = {"seed": max(600.0, n * 1.5), "settle": settle_cap,
                                      "restart": settle_cap}
        return cls(**{**defaults, **overrides})


class Database(StrEnum):
    """Where the case store and Prefect keep their data, and so how the system runs."""

    SQLITE = "sqlite"  # `sbu serve`
    POSTGRES = "postgres"  # `sbu deploy` and two `sbu worker`s


@dataclass(frozen=True)
class Config:
    n: int
    db: Database

    @property
    def name(self) -> str:
        return f"{self.db}-n{self.n}"


@dataclass
class Seeders:
    """The SQLite store that grows through the sizes, each configuration taking a copy at its
    own (a PostgreSQL configuration seeds its own database)."""

    workdir: Path
    say: Progress
    cache: SeedCache | None = None
    _sqlite: Seeder | None = None

    def sqlite(self) -> Seeder:
        if self._sqlite is None:
            self._sqlite = Seeder(Settings(data_dir=self.workdir / "seed-sqlite" / "var"), self.say,
                                  cache=self.cache)
        return self._sqlite

    def dispose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()


class StepFailed(Exception):
    """A step could not be measured: the rest of the configuration is skipped, with this reason."""


@dataclass
class ConfigRun:
    config: Config
    caps: Caps
    root: Path
    seeders: Seeders
    say: Progress
    probes: int = PROBES
    keep: bool = False
    result: ConfigResult = field(init=False)
    system: System = field(init=False)
    build: Build = field(init=False)
    plans: dict[int, CasePlan] = field(init=False, default_factory=dict)
    refs: dict[int, str] = field(init=False, default_factory=dict)
    _service: CaseService | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        label = ServeOnSqlite.label if self.config.db is Database.SQLITE else PostgresWorkers.label
        self.result = ConfigResult(name=self.config.name, n=self.config.n, db=self.config.db,
                                   system=label, started=datetime.now(UTC).isoformat(timespec="seconds"))

    # -- the whole configuration ---------------------------------------------------------------

    def run(self) -> ConfigResult:
        began = time.monotonic()
        match self.config.db:
            case Database.SQLITE:
                self.system = ServeOnSqlite(self.root)
            case Database.POSTGRES:
                unavailable = PostgresWorkers.unavailable()
                if unavailable is not None:
                    self.result.available = False
                    self.result.reason = unavailable
                    self.say(f"skipped: {unavailable}")
                    return self.result
                self.system = PostgresWorkers(self.root)
            case _:
                raise AssertionError(f"unhandled database {self.config.db}")
        steps: list[tuple[str, Callable[[], None]]] = [
            ("seeding", self.seed), ("fresh start", self.fresh_start), ("idle", self.idle),
            ("sweep", self.sweep), ("digest", self.digest), ("commands", self.commands),
            ("restart", self.restart), ("alert pass", self.alert_pass)]
        try:
            for name, step in steps:
                try:
                    step()
                except StepFailed as failure:
                    self.result.details.setdefault("failed", []).append(f"{name}: {failure}")
                    self.say(f"{name} failed: {failure}; the steps after it are skipped")
                    break
                except Exception as error:  # noqa: BLE001 - reported in the results, then the next config
                    self.result.details.setdefault("failed", []).append(
                        f"{name}: {error.__class__.__name__}: {error}")
                    self.say(f"{name} failed ({error.__class__.__name__}: {error}); the steps after it "
                             "are skipped")
                    break
        finally:
            self.say("stopping the system")
            self.system.stop()
            if self._service is not None:
                self._service.store.dispose()
            if not self.keep:
                self.system.discard()
            self.result.seconds = round(time.monotonic() - began, 1)
        return self.result

    # -- helpers -------------------------------------------------------------------------------

    def service(self) -> CaseService:
        """A case service on the system's store and case clock (built again when the clock moves)."""
        if self._service is None:
            from tasks.service import CaseService
            from tasks.store.db import Store

            settings = self.system.settings
            self._service = CaseService(store=Store(settings.sqlalchemy_url), settings=settings,
                                        clock=settings.clock())
        return self._service

    def forget_service(self) -> None:
        if self._service is not None:
            self._service.store.dispose()
            self._service = None

    def clock(self) -> Clock:
        return self.service().clock

    def figure(self, key: str, what: str, unit: str, *, cap: float | None = None) -> Measuring:
        return Measuring(self.result.add(Figure(key, what, unit, cap=cap, target=TARGETS.get(key, ""))))

    def check(self) -> settle.SettleCheck:
        with self.system.client() as client:
            return settle.check(client, self.service(), self.build, now=self.clock().now())

    def wait_settled(self, *, began: float, cap: float, what: str) -> tuple[bool, float, settle.SettleCheck]:
        """Poll until settled or `cap` seconds after `began`. A full check reads every case from
        the store and every case run from Prefect (whose server is part of what is measured), so
        polls count runs by state (`settle.RunCounts`) and check in full only when the counts
        allow it, or once a minute to show how far it has got."""
        deadline = began + cap
        last: list[settle.SettleCheck] = []
        expected = settle.expected_waits(self.service())
        checked_at = [0.0]

        def poll() -> tuple[bool, str]:
            with self.system.client() as client:
                counts = settle.run_counts(client, self.build.process_ids)
            now = time.monotonic()
            due = now - checked_at[0] >= FULL_CHECK_EVERY or now >= deadline
            if not counts.may_be_settled(expected) and not due:
                return False, counts.summary(expected) + (f"; last full check: {last[-1].summary()}"
                                                          if last else "")
            checked_at[0] = now
            checked = self.check()
            last.append(checked)
            return checked.settled, checked.summary()

        done, _ = wait_until(poll, deadline=deadline, say=self.say, what=what, interval=5.0)
        if not last or (not done and time.monotonic() - deadline < 60):
            last.append(self.check())
        return done, time.monotonic() - began, last[-1]

    def run_counts(self) -> dict[str, int]:
        """Flow runs Prefect has: started (any that ever ran), completed, failed and crashed."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        def of(state: StateType) -> FlowRunFilter:
            return FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state])))

        with self.system.client() as client:
            return {
                "started": client.count_flow_runs(
                    flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False))),
                "completed": client.count_flow_runs(flow_run_filter=of(StateType.COMPLETED)),
                "failed": client.count_flow_runs(flow_run_filter=of(StateType.FAILED)),
                "crashed": client.count_flow_runs(flow_run_filter=of(StateType.CRASHED)),
                "case_runs_started": self._case_runs_started(client),
            }

    def _case_runs_started(self, client: SyncPrefectClient) -> int:
        from prefect.client.schemas.filters import (
            FlowFilter,
            FlowFilterName,
            FlowRunFilter,
            FlowRunFilterStartTime,
        )

        return client.count_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(self.build.process_ids))),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)))

    # -- 1. seeding ------------------------------------------------------------------------------

    def seed(self) -> None:
        n = self.config.n
        # SQLite: one store grows through the sizes and each configuration takes a copy.
        # PostgreSQL: each configuration's store is seeded in its own database.
        sqlite = self.config.db is Database.SQLITE
        seeder = self.seeders.sqlite() if sqlite else \
            Seeder(self.system.settings, self.seeders.say)
        self.say(f"seeding {n:,} open cases through the case service (store already holds "
                 f"{seeder.figures.cases:,})")
        measuring = self.figure("seeding", f"seeding {n:,} cases through the case service", "s",
                                cap=self.caps.seed)
        # PostgreSQL's writers do not wait for one another: a process a core.
        processes = 1 if sqlite else max(1, min(4, os.cpu_count() or 1))
        seeder.grow_to(n, deadline=time.monotonic() + self.caps.seed, processes=processes)
        figures = seeder.figures
        if figures.cases < n:
            measuring.done(figures.seconds, capped=True)
            raise StepFailed(f"seeding reached its cap at {figures.cases:,} cases")
        reused = (f"{figures.reused_cases:,} cases reused from the store an earlier run seeded with "
                  f"this code on {figures.reused_on} ({figures.reused_seconds:.0f} s then; --reseed "
                  "seeds afresh)") if figures.reused_cases else ""
        if figures.cases_seeded == 0:
            measuring.done(None)
            measuring.figure.missing = f"not measured: {reused}"
        else:
            measuring.done(round(figures.seconds, 1), note=(
                f"{figures.cases_seeded:,} cases seeded in this run: {figures.cases_per_second:.2f} cases/s, "
                f"{figures.changes_per_second:.1f} changes/s ({figures.changes_seeded:,} changes)"
                + (f"; {reused}" if reused else "")))
        self.plans = {index: seeder.plans[index] for index in range(n)}
        self.refs = {index: seeder.case_refs[index] for index in range(n)}
        self.result.details["mix"] = {"stages": _count(plan.stage.value for plan in self.plans.values()),
                                      "behind": sum(plan.behind for plan in self.plans.values())}
        target = self.system.settings
        if sqlite:
            if self.root.exists():
                shutil.rmtree(self.root)
            seeder.copy_to(target)
        else:
            seeder.dispose()
        measuring = self.figure("catch_up", f"bringing the store to {SEEDED_AS_OF:%a %d %b %H:%M} "
                                "(firing the timers due by then, in order)", "s", cap=self.caps.seed)
        fired, delivered, seconds = catch_up(target, self.say, deadline=time.monotonic() + self.caps.seed)
        measuring.done(seconds, note=f"{fired:,} alerts sent, {delivered:,} emails")
        from tasks.service import CaseService
        from tasks.store.db import Store

        store = Store(target.sqlalchemy_url)
        try:
            reading = CaseService(store=store, settings=target, clock=_fixed(SEEDED_AS_OF))
            views = reading.list_cases()
            self.build = detect(reading.registry)
            overdue = sum(1 for view in views for item in view.steps if item.is_open and item.overdue)
            self.result.details["store"] = {
                "open_cases": sum(1 for view in views if view.status.value != "closed"),
                "open_items": sum(1 for view in views for item in view.steps if item.is_open),
                "overdue_items": overdue, "timers_scheduled": len(reading.timers()),
                "processes_started": sum(len(view.runs) for view in views)}
        finally:
            store.dispose()
        self.result.build = self.build.describe
        self.say(f"store ready: {self.result.details['store']}; build: {self.build.describe}")

    # -- 2. a fresh start ------------------------------------------------------------------------

    def fresh_start(self) -> None:
        self.say("starting the system on a fresh Prefect database")
        measuring = self.figure("settle_fresh", "fresh Prefect database → settled (start included)", "s",
                                cap=self.caps.settle)
        began = time.monotonic()
        startup = self.system.start(case_start=SEEDED_AS_OF + START_AFTER_SEED)
        self.result.details["startup_s"] = round(startup, 1)
        self.say(f"serving after {startup:.0f} s; waiting for every case run to reach its wait")
        done, seconds, last = self.wait_settled(began=began, cap=self.caps.settle, what="settling")
        cpu = read_trees(self.system.roots())
        counts = self.run_counts()
        measuring.done(seconds, capped=not done, note=f"{last.summary()}; flow runs: {counts}")
        self.result.details["settle_fresh"] = {"check": last.summary(), "runs": counts,
                                              "cpu_seconds": round(cpu.cpu_seconds, 1)}
        self._settle_figures("fresh", seconds, cpu.cpu_seconds, counts, last)

    def _settle_figures(self, label: str, seconds: float, cpu_seconds: float, counts: dict[str, int],
                        last: settle.SettleCheck) -> None:
        self.figure(f"settled_fraction_{label}", f"cases settled at the end ({label})", "%").done(
            round(100 * last.fraction, 1), note=f"{last.settled_cases:,} of {last.open_cases:,}")
        self.figure(f"cpu_settle_{label}", f"system CPU, start to settled ({label})", "CPU-s").done(
            round(cpu_seconds, 1), note=f"{100 * cpu_seconds / seconds:.0f}% of a core on average")
        if counts["case_runs_started"]:
            self.figure(f"cpu_per_case_run_{label}", f"CPU-s per case run started ({label})", "CPU-s").done(
                round(cpu_seconds / counts["case_runs_started"], 2),
                note=f"{counts['case_runs_started']:,} case runs started")
        if counts["started"]:
            self.figure(f"cpu_per_flow_run_{label}", f"CPU-s per flow run started ({label})", "CPU-s").done(
                round(cpu_seconds / counts["started"], 2),
                note=f"{counts['started']:,} flow runs started, {counts['completed']:,} completed"
                     + (f", {cpu_seconds / counts['completed']:.2f} CPU-s per completed"
                        if counts["completed"] else "")
                     + (f"; {counts['failed']} failed, {counts['crashed']} crashed"
                        if counts["failed"] or counts["crashed"] else ""))

    # -- 3. idle ---------------------------------------------------------------------------------

    def idle(self) -> None:
        window = self.caps.idle_window
        self.say(f"measuring the system's CPU over {window:.0f} s with every case waiting")
        measuring = self.figure("idle_cpu", f"idle CPU over {window:.0f} s, all cases waiting",
                                "% of a core")
        roots = self.system.roots()
        since = datetime.now(UTC)
        before = read_trees(roots)
        time.sleep(window)
        after = read_trees(roots)
        used = after.cpu_seconds - before.cpu_seconds
        ran = self._runs_started_since(since)
        measuring.done(round(100 * used / window, 2),
                       note=f"{used:.1f} CPU-s; flow runs started in the window: {ran}")
        self.figure("idle_rss", "resident memory of the system's processes", "MB").done(
            round(after.rss_bytes / 2**20), note=f"{after.processes} processes")

    def _runs_started_since(self, since: datetime) -> int:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

        with self.system.client() as client:
            # `after_` alone also matches runs not yet started, by their expected start.
            return client.count_flow_runs(flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=since, is_null_=False)))

    # -- 4. sweep and digest ---------------------------------------------------------------------

    def sweep(self) -> None:
        self._timed_run("sweep", f"one sweep ({self.build.sweep.name}) with nothing to repair",
                        self.build.sweep.deployment)

    def digest(self) -> None:
        self._timed_run("digest", "the daily digest", self.build.digest.deployment)

    def _timed_run(self, key: str, what: str, deployment: str) -> None:
        self.say(f"running {what}")
        measuring = self.figure(key, f"{what}: its run, start to end in Prefect", "s", cap=self.caps.run)
        with self.system.client() as client:
            run = client.create_flow_run_from_deployment(client.read_deployment_by_name(deployment).id,
                                                         name=f"{key} (bench)")
        created = time.monotonic()
        final = self._wait_terminal(run.id, cap=self.caps.run, what=what)
        if final is None:
            measuring.done(self.caps.run, capped=True)
            return
        wall = time.monotonic() - created
        seconds = _run_seconds(final)
        state = final.state.type.value.lower() if final.state is not None else "unknown"
        measuring.done(seconds, note=f"{state}; {wall:.1f} s from creating the run to its end")
        if state != "completed":
            measuring.figure.missing = f"failed: the run ended {state}"

    def _wait_terminal(self, run_id: UUID, *, cap: float, what: str) -> FlowRun | None:
        found: list[FlowRun] = []

        def ended() -> tuple[bool, str]:
            with self.system.client() as client:
                run = client.read_flow_run(run_id)
            found[:] = [run]
            state = run.state
            return bool(state is not None and state.is_final()), (str(state.name) if state else "no state")

        done, _ = wait_until(ended, deadline=time.monotonic() + cap, say=self.say, what=what, interval=0.5)
        return found[-1] if done else None

    # -- 5. the commands -------------------------------------------------------------------------

    def commands(self) -> None:
        # A case with a CSPR under way: the longest `sbu status`.
        index = min(self.refs, key=lambda index: (self.plans[index].stage is not Stage.CSPR_IMRS, index))
        ref = self.refs[index]
        referred = london_time(london_date(SEEDED_AS_OF), _NINE)
        commands: dict[str, list[str]] = {
            "python_pass": [sys.executable, "-c", "pass"],
            "cli_status": [SBU, "status", ref],
            "cli_cases": [SBU, "cases"],
            "cli_timetable": [SBU, "timetable", "--referred", referred.isoformat(),
                              "--aware", london_date(SEEDED_AS_OF - timedelta(days=1)).isoformat()],
        }
        self.say(f"timing `sbu status`, `sbu cases` and `sbu timetable` beside `python -c pass` "
                 f"(median of {CLI_RUNS}, interleaved)")
        measurings = {key: self.figure(key, f"`{' '.join([Path(argv[0]).name, *argv[1:2]])}` wall time"
                                       + (f" ({self.config.n:,} cases)" if key == "cli_cases" else ""),
                                       "s", cap=self.caps.cli)
                      for key, argv in commands.items()}
        times: dict[str, list[float]] = {key: [] for key in commands}
        for _ in range(CLI_RUNS):
            for key, argv in commands.items():
                began = time.monotonic()
                try:
                    result = subprocess.run(argv, env=self.system.env, capture_output=True, text=True,
                                            timeout=self.caps.cli, check=False)
                except subprocess.TimeoutExpired:
                    times[key].append(math.inf)
                    continue
                times[key].append(time.monotonic() - began)
                if result.returncode != 0:
                    raise StepFailed(f"{' '.join(argv[1:2])} exited {result.returncode}: "
                                     f"{result.stderr.strip()[-300:]}")
        baseline = statistics.median(times["python_pass"])
        for key, measuring in measurings.items():
            median = statistics.median(times[key])
            capped = math.isinf(median)
            shown = key != "python_pass" and not capped
            ratio = f"{median / baseline:.1f} times `python -c pass`; " if shown else ""
            measuring.done(self.caps.cli if capped else round(median, 3), capped=capped,
                           note=ratio + "runs: " + ", ".join(f"{t:.2f}" for t in times[key]))

    # -- 6. an ordinary restart ------------------------------------------------------------------

    def restart(self) -> None:
        self.say("stopping the system and starting it again (Prefect's database kept)")
        self.system.stop()
        measuring = self.figure("settle_restart", "restart (Prefect's database kept) → settled", "s",
                                cap=self.caps.restart)
        began = time.monotonic()
        self.system.start()
        done, seconds, last = self.wait_settled(began=began, cap=self.caps.restart, what="settling again")
        measuring.done(seconds, capped=not done, note=last.summary())
        self.result.details["settle_restart"] = {"check": last.summary(), "settled": done}

    # -- 7. the alert pass -----------------------------------------------------------------------

    def alert_pass(self) -> None:
        calendar = self.service().calendar
        pass_day = calendar.next_working_day(london_date(SEEDED_AS_OF))
        pass_at = london_time(pass_day, _NINE)
        restart = self.result.figure("settle_restart")
        restart_seconds = self.caps.restart if restart is None or restart.value is None else restart.value
        startup = float(self.result.details.get("startup_s", 60.0))
        lead = min(max(1.5 * restart_seconds + 30.0, self.caps.lead_min), self.caps.lead_max)
        self.say(f"restarting on a case clock {lead + startup:.0f} s before {pass_at:%a %d %b %H:%M} "
                 "(the alert pass)")
        self.system.stop()
        self.forget_service()
        self.system.start(case_start=pass_at - timedelta(seconds=lead + startup))
        service, clock = self.service(), self.clock()
        with self.system.client() as client:
            self.build.timers.bring_due(client, service, clock=clock, at=pass_at)
        due = [timer for timer in service.timers() if timer.fire_at <= pass_at]
        at_nine = sum(1 for timer in due if timer.fire_at == pass_at)
        pass_wall = clock.wall_time_for(pass_at)
        self.say(f"{len(due):,} timers due by then ({at_nine:,} at 09:00); waiting for 09:00 "
                 f"({(pass_wall - datetime.now(UTC)).total_seconds():.0f} s)")
        before = self.check()
        self.result.details["before_pass"] = before.summary()
        self.say(f"just before the pass: {before.summary()}")
        _sleep_until(pass_wall, say=self.say)
        with self.system.client() as client:
            sweep = client.create_flow_run_from_deployment(
                client.read_deployment_by_name(self.build.sweep.deployment).id,
                name="sweep at the pass (bench)")
        watcher = PassWatcher(service, pass_at=pass_at, wall=pass_wall, cap=self.caps.alert_pass)
        watcher.start()
        probes = self._probes(pass_day, watcher)
        watcher.join(timeout=self.caps.alert_pass)
        measuring = self.figure("pass_all_fired", f"alert pass: 09:00 until every timer due by then fired "
                                f"({len(due):,} due, {at_nine:,} of them at 09:00)", "s",
                                cap=self.caps.alert_pass)
        measuring.start = watcher.load_start
        capped = watcher.seconds is None
        measuring.done(self.caps.alert_pass if watcher.seconds is None else round(watcher.seconds, 1),
                       capped=capped, note=f"{watcher.fired:,} fired; {self.build.timers.name}")
        self._timer_pass_figure(since=pass_wall - timedelta(seconds=5))
        final = self._wait_terminal(sweep.id, cap=self.caps.run, what="the sweep started at 09:00")
        self.figure("sweep_at_pass", "the sweep started at 09:00: its run, start to end", "s",
                    cap=self.caps.run).done(_run_seconds(final) if final else self.caps.run,
                                            capped=final is None)
        self._probe_figures(probes, watcher)

    def _timer_pass_figure(self, *, since: datetime) -> None:
        """The timer pass that fired the 09:00 alerts: the longest of the pass runs that started
        from 09:00 until every due timer had fired (a pass finding nothing due is short)."""
        measuring = self.figure("timer_pass", "the timer pass at 09:00: its run, start to end in Prefect",
                                "s", cap=self.caps.alert_pass)
        timers = self.build.timers
        with self.system.client() as client:
            runs = runs_started(client, timers.flow, since=since)
        if not timers.one_run_a_pass:
            measuring.done(None)
            measuring.figure.missing = (f"not available on this build (one flow run per timer: "
                                        f"{len(runs):,} {timers.flow.name} runs started from 09:00 to "
                                        "the last decision's end)")
            return
        ended = [run if run.state is not None and run.state.is_final()
                 else self._wait_terminal(run.id, cap=self.caps.alert_pass, what="a timer pass to end")
                 for run in runs]
        seconds = [value for run in ended if (value := _run_seconds(run)) is not None]
        if not seconds:
            measuring.done(None)
            measuring.figure.missing = f"not measured: no {timers.flow.name} run ended after 09:00"
            return
        measuring.done(max(seconds), note=f"{len(runs)} {timers.flow.name} runs from 09:00 to the last "
                       "decision's end: "
                       + ", ".join(f"{value:.2f} s" for value in sorted(seconds, reverse=True)[:5]))

    def _probes(self, day: Any, watcher: PassWatcher) -> list[Probe]:
        chosen = [index for index in sorted(self.plans) if _has_next(self.plans[index])][: self.probes]
        self.say(f"recording a decision on {len(chosen)} cases, one after another, while the pass runs")
        probes: list[Probe] = []
        for number, index in enumerate(chosen, 1):
            move = self.plans[index].next_move(day)
            probe = self._probe(self.refs[index], move, watcher)
            probes.append(probe)
            self.say(f"decision {number}/{len(chosen)}: {probe.describe()}")
        return probes

    def _probe(self, ref: str, move: Move, watcher: PassWatcher) -> Probe:
        from prefect.client.schemas.objects import StateType

        service, clock, registry = self.service(), self.clock(), self.service().registry
        owner = registry.process_of(move.name)
        assert owner is not None
        run_id = service.case_view(ref).runs.get(owner.id)
        probe = Probe(ref=ref, what=move.label, process=owner.id)
        if run_id is None:
            probe.error = "its process has no run"
            return probe
        with self.system.client() as client:
            old_key = waiting_key(client.read_flow_run(UUID(run_id)))
        case_before = clock.now()
        # The DSPs' decision has a command of its own, with the same options.
        verb = ["decide", ref] if move.name == "dsp-decision" else ["record", ref, move.name]
        command = [SBU, *verb, *cli_options(move, registry)]
        began = datetime.now(UTC)
        result = subprocess.run(command, env=self.system.env, capture_output=True, text=True,
                                timeout=self.caps.probe, check=False)
        probe.command_seconds = (datetime.now(UTC) - began).total_seconds()
        if result.returncode != 0:
            probe.error = f"sbu record exited {result.returncode}: {result.stderr.strip()[-200:]}"
            return probe

        def moved() -> tuple[bool, str]:
            with self.system.client() as client:
                run = client.read_flow_run(UUID(run_id))
            state = run.state.type if run.state is not None else None
            key = waiting_key(run)
            return (state is StateType.COMPLETED or (key is not None and key != old_key)), \
                f"{state.value if state else 'no state'} {key or ''}"

        done, _ = wait_until(moved, deadline=time.monotonic() + self.caps.probe, say=self.say,
                             what=f"{ref} to move", interval=0.1)
        committed = _commit_time(ref, after=case_before, env=self.system.env)
        if committed is None:
            probe.error = "no audit event for the record"
            return probe
        probe.committed = clock.wall_time_for(committed)
        probe.during_pass = watcher.running_at(probe.committed)
        with self.system.client() as client:
            states = client.read_flow_run_states(UUID(run_id))
        running = [state.timestamp for state in states
                   if state.type is StateType.RUNNING and state.timestamp >= probe.committed]
        if running:
            probe.to_running = (min(running) - probe.committed).total_seconds()
            probe.command_to_running = (min(running) - began).total_seconds()
        if done:
            settled = [s.timestamp for s in states if s.timestamp >= probe.committed
                       and s.type in (StateType.PAUSED, StateType.COMPLETED)]
            if settled:
                probe.to_next_wait = (max(settled) - probe.committed).total_seconds()
        else:
            probe.capped = True
        return probe

    def _probe_figures(self, probes: list[Probe], watcher: PassWatcher) -> None:
        good = [probe for probe in probes if probe.error is None]
        self.result.details["probes"] = [probe.as_json() for probe in probes]
        during = sum(1 for probe in good if probe.during_pass)
        errors = [probe.error for probe in probes if probe.error is not None]
        base = (f"{len(good)} decisions, {during} committed while timers were still due"
                + (f"; {len(errors)} failed: {errors[0]}" if errors else ""))
        series = {
            "decision": ("decision → case run Running", [p.to_running for p in good]),
            "decision_next_wait": ("decision → case run at its next wait", [p.to_next_wait for p in good]),
            "decision_command": ("`sbu record` started → case run Running",
                                 [p.command_to_running for p in good]),
        }
        for key, (what, values) in series.items():
            measured = sorted(value if value is not None else math.inf for value in values)
            capped = any(math.isinf(value) for value in measured)
            slowest = ("; the slowest did not get there within the cap" if capped
                       else f"; the slowest {measured[-1]:.1f} s" if measured else "")
            for name, pick in (("p50", statistics.median), ("p95", _p95)):
                measuring = self.figure(f"{key}_{name}", f"{what}, {name}", "s", cap=self.caps.probe)
                measuring.start = watcher.load_start
                if not measured:
                    measuring.done(None)
                    measuring.figure.missing = "not measured: " + (errors[0] if errors else "no decisions")
                    continue
                value = pick(measured)
                note = base + slowest if name == "p50" else "as above"
                measuring.done(self.caps.probe if math.isinf(value) else round(value, 2),
                               capped=math.isinf(value), note=note)


# -- the pieces ------------------------------------------------------------------------------------

@dataclass
class Probe:
    """One decision recorded during the pass."""

    ref: str
    what: str
    process: str
    command_seconds: float | None = None
    committed: datetime | None = None
    to_running: float | None = None
    to_next_wait: float | None = None
    command_to_running: float | None = None
    during_pass: bool = False
    capped: bool = False
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.ref} {self.what}: failed: {self.error}"
        running = f"{self.to_running:.2f} s" if self.to_running is not None else "never"
        moved = f"{self.to_next_wait:.2f} s" if self.to_next_wait is not None else "not yet"
        return (f"{self.ref} {self.what} ({self.process} run): running after {running}, at its next "
                f"wait after {moved}; the command took {self.command_seconds or 0:.1f} s"
                + (" (timers still due)" if self.during_pass else ""))

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "what": self.what, "process": self.process,
                "command_seconds": _round(self.command_seconds), "to_running": _round(self.to_running),
                "to_next_wait": _round(self.to_next_wait),
                "command_to_running": _round(self.command_to_running),
                "during_pass": self.during_pass, "capped": self.capped, "error": self.error}


class PassWatcher(threading.Thread):
    """Watches the store from 09:00 until no timer due by then is left to fire (or the cap)."""

    def __init__(self, service: CaseService, *, pass_at: datetime, wall: datetime, cap: float) -> None:
        super().__init__(name="bench-pass-watcher", daemon=True)
        from tasks.service import CaseService
        from tasks.store.db import Store

        # A service of its own: a store session is not shared between threads.
        self.service = CaseService(store=Store(service.store.url), settings=service.settings,
                                   clock=service.clock, registry=service.registry)
        self.pass_at, self.wall, self.cap = pass_at, wall, cap
        self.seconds: float | None = None
        self.capped = False
        self.fired = 0
        self.ended: datetime | None = None
        self.load_start = 0.0

    def run(self) -> None:
        from bench.procstat import load_average

        self.load_start = load_average()
        initial: int | None = None
        try:
            while True:
                left = scheduled_timers(self.service, due_by=self.pass_at)
                initial = left if initial is None else initial
                now = datetime.now(UTC)
                elapsed = (now - self.wall).total_seconds()
                if left == 0:
                    self.seconds, self.ended = max(0.0, elapsed), now
                    break
                if elapsed > self.cap:
                    self.capped, self.ended = True, now
                    break
                time.sleep(1.0)
            self.fired = (initial or 0) - left
        finally:
            self.service.store.dispose()

    def running_at(self, moment: datetime) -> bool:
        """Whether timers due by 09:00 were still waiting to fire at `moment`."""
        return self.ended is None or moment < self.ended


def cli_options(move: Move, registry: Any) -> list[str]:
    """`move`'s form values as `sbu record`'s options: the form's date as `--on`, a signature as
    `--dsp-la NAME`, a yes-or-no as `--sin`/`--no-sin`, a list one option per value, the rest
    `--field-name VALUE` (the conventions of `deployments/cli/forms.py`)."""
    spec = registry.item(move.name) if move.kind is Kind.RECORD else registry.act(move.name)
    date_field = spec.date_field if spec is not None else None
    options: list[str] = []
    for name, value in move.values.items():
        flag = "--" + name.replace("_", "-")
        if name == date_field:
            options += ["--on", str(value)]
        elif isinstance(value, dict) and "name" in value:
            options += [flag, str(value["name"])]
        elif isinstance(value, bool):
            options.append(flag if value else f"--no-{name.replace('_', '-')}")
        elif isinstance(value, list):
            single = flag[:-3] + "y" if flag.endswith("ies") else flag.removesuffix("s")
            for each in value:
                options += [single, str(each)]
        else:
            options += [flag, str(value)]
    return options


def _commit_time(ref: str, *, after: datetime, env: dict[str, str]) -> datetime | None:
    """When the record was committed: its audit event's time (case time), from `sbu audit`."""
    result = subprocess.run([SBU, "audit", "--case", ref, "--limit", "20", "--json"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        return None
    moments = [datetime.fromisoformat(event["at"]) for event in json.loads(result.stdout)["events"]]
    later = [moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in moments]
    later = [moment for moment in later if moment >= after]
    return min(later) if later else None


def _has_next(plan: CasePlan) -> bool:
    try:
        plan.next_move(london_date(SEEDED_AS_OF))
    except ValueError:
        return False
    return True


def _run_seconds(run: FlowRun | None) -> float | None:
    if run is None or run.start_time is None or run.end_time is None:
        return None
    return round(float((run.end_time - run.start_time).total_seconds()), 2)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _fixed(moment: datetime) -> Clock:
    from models.clock import FixedClock

    return FixedClock(moment)


def _sleep_until(moment: datetime, *, say: Progress) -> None:
    shown = time.monotonic()
    while (left := (moment - datetime.now(UTC)).total_seconds()) > 0:
        if time.monotonic() - shown >= 15:
            shown = time.monotonic()
            say(f"{left:.0f} s to 09:00")
        time.sleep(min(left, 1.0))


def waiting_key(run: FlowRun) -> str | None:
    """The key a suspended run waits on, or None if it is not waiting."""
    from prefect.client.schemas.objects import StateType

    if run.state is None or run.state.type is not StateType.PAUSED:
        return None
    return run.state.state_details.pause_key

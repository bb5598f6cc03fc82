"""Seeding a case store with the benchmark's open cases, through the case service.

Every case is referred and every step recorded with `CaseService.refer`, `record` and `act`, the
same doors `sbu` uses, on a fixed clock set to the day each step was done (`bench.mix` says what and
when). The cases, their items, timers and audit trail are exactly what the procedure writes. One
thing is written around the service: the email the history queued is marked sent when it was
queued (`mark_history_sent`), since it went out at the time; a system starting on this store has
no backlog of old mail to send.

What makes it quick enough for 10,000 cases, without changing what is written: one service (one
engine, one calendar, one registry) for the whole run, and SQLite's WAL journal with
`synchronous=NORMAL` on the seeding connection (a commit is then a write to the WAL, not an fsync;
the store the system later opens has its usual settings).

A store grows case by case (`Seeder.grow_to`), and a copy of it at any size can be brought up to
the store's moment (`catch_up`): every timer due by then fires in order, as it would have, so the
system starts with the next reminder, alert and escalation ahead of it and nothing overdue to fire.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.build import detect
from bench.mix import SEEDED_AS_OF, CasePlan, Kind, Move, plan_case
from models.clock import FixedClock
from models.enums import Interface
from models.forms import parse_referral
from models.settings import Settings
from tasks.service import Actor, CaseService
from tasks.store.db import Store

SEEDER = Actor("bench-seed", Interface.CLI)
# Cases seeded between two markings of their email as sent.
DELIVERY_EVERY = 25
Say = Callable[[str], None]


def _quick_commits(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_service(settings: Settings, *, at: datetime = SEEDED_AS_OF) -> tuple[CaseService, FixedClock]:
    """A case service on `settings`' store, with a clock the caller moves."""
    store = Store(settings.sqlalchemy_url)
    if store.engine.dialect.name == "sqlite":
        event.listen(store.engine, "connect", _quick_commits)
    store.migrate()
    clock = FixedClock(at)
    return CaseService(store=store, settings=settings, clock=clock), clock


def _set(clock: FixedClock, moment: datetime) -> None:
    clock.advance(moment - clock.now())


def apply_move(service: CaseService, clock: FixedClock, move: Move, *, case_ref: str | None,
               actor: Actor = SEEDER) -> str:
    """Record `move` through the service at its own time; the case's reference."""
    _set(clock, move.at)
    registry = service.registry
    match move.kind:
        case Kind.REFER:
            return service.refer(parse_referral(dict(move.values), now=clock.now()), actor=actor).case_ref
        case Kind.RECORD:
            assert case_ref is not None
            spec = registry.item(move.name)
            if spec is None:
                raise ValueError(f"this build's registry has no step {move.name}")
            form = spec.form.model_validate(dict(move.values), context={"now": clock.now()})
            service.record(case_ref, move.name, form, actor=actor)
            return case_ref
        case Kind.ACT:
            assert case_ref is not None
            act = registry.act(move.name)
            if act is None:
                raise ValueError(f"this build's registry has no act {move.name}")
            form = act.form.model_validate(dict(move.values), context={"now": clock.now()})
            service.act(case_ref, move.name, form, actor=actor)
            return case_ref
    raise AssertionError(f"unhandled move {move.kind}")


def mark_history_sent(service: CaseService) -> int:
    """Mark every queued email sent when it was queued: the history's email went out at the
    time. One UPDATE of the outbox's status: delivering each through the outbox's own delivery
    to a sender that accepts everything takes two transactions a message, a quarter of the
    seeding's time."""
    from sqlalchemy import update

    from models.schema import OutboxStatus, outbox

    with service.store.transaction() as session:
        result = session.execute(update(outbox).where(outbox.c.status == OutboxStatus.PENDING)
                                 .values(status=OutboxStatus.SENT, sent_at=outbox.c.created_at, attempts=1))
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class SeedingFigures:
    """How long seeding took, measured as it went; `reused` when some of the store came from a
    store an earlier run seeded with the same code (`SeedCache`)."""

    cases: int = 0
    changes: int = 0
    seconds: float = 0.0  # measured in this run
    cases_seeded: int = 0  # in this run
    changes_seeded: int = 0
    delivered: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    behind: int = 0
    reused_cases: int = 0
    reused_seconds: float = 0.0
    reused_on: str = ""

    @property
    def cases_per_second(self) -> float:
        return self.cases_seeded / self.seconds if self.seconds else 0.0

    @property
    def changes_per_second(self) -> float:
        return self.changes_seeded / self.seconds if self.seconds else 0.0


REPO = Path(__file__).resolve().parents[1]


def code_key() -> str:
    """A digest of everything a seeded store depends on: the domain, the store and the service
    (`models/`, `tasks/`) and the seeding itself. A store seeded under another key is not reused."""
    digest = hashlib.sha256()
    files = [path for folder in ("models", "tasks") for path in sorted((REPO / folder).rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts]
    for path in [*files, REPO / "bench" / "mix.py", REPO / "bench" / "seed.py"]:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SeedCache:
    """Seeded SQLite stores kept between runs, by size, for one `code_key`: seeding 10,000 cases
    takes tens of minutes, and a second run of the same code need not repeat it. Stores of any
    other key are removed when one is saved."""

    root: Path

    @property
    def folder(self) -> Path:
        return self.root / code_key()

    def sizes(self) -> list[int]:
        return sorted(int(path.stem.removeprefix("sqlite-n")) for path in self.folder.glob("sqlite-n*.db")
                      if (path.with_suffix(".json")).is_file())

    def path(self, n: int) -> Path:
        return self.folder / f"sqlite-n{n}.db"


def _copy_sqlite(source_path: Path, destination_path: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), through SQLite's backup."""
    destination_path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (destination_path, destination_path.with_name(destination_path.name + "-wal"),
                     destination_path.with_name(destination_path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    source = sqlite3.connect(source_path)
    destination = sqlite3.connect(destination_path)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()


def _sqlite_path(settings: Settings) -> Path:
    url = settings.sqlalchemy_url
    if not url.startswith("sqlite"):
        raise ValueError("only a SQLite store is copied; seed a PostgreSQL store in place")
    return Path(url.split("///", 1)[1])


@dataclass
class Seeder:
    """A store being seeded: cases 0, 1, 2, ... in order, so each size is a prefix of the next."""

    settings: Settings
    say: Say
    cache: SeedCache | None = None
    figures: SeedingFigures = field(default_factory=SeedingFigures)
    case_refs: dict[int, str] = field(default_factory=dict)
    plans: dict[int, CasePlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service, self.clock = open_service(self.settings)

    def grow_to(self, n: int, *, deadline: float, processes: int = 1) -> None:
        """Seed cases until the store holds `n` (from the cache's largest store of at most `n`
        cases, if it has one beyond this one); stops (the caller sees fewer) past `deadline`.
        With `processes` > 1 (PostgreSQL, whose writers do not wait for each other), that many
        processes seed a share each."""
        if self.cache is not None:
            self._restore(n)
        if processes > 1 and self.figures.cases < n:
            self._grow_in_parallel(n, deadline=deadline, processes=processes)
            return
        began = time.monotonic()
        shown = began
        start = self.figures.cases
        for index in range(start, n):
            plan = plan_case(index, calendar=self.service.calendar)
            ref: str | None = None
            for move in plan.moves:
                ref = apply_move(self.service, self.clock, move, case_ref=ref)
                self.figures.changes += 1
                self.figures.changes_seeded += 1
            assert ref is not None
            self._add(index, ref, plan)
            self.figures.cases_seeded += 1
            if (index + 1) % DELIVERY_EVERY == 0 or index + 1 == n:
                self.figures.delivered += mark_history_sent(self.service)
            now = time.monotonic()
            if now - shown >= 10.0 or index + 1 == n:
                shown = now
                done = index + 1 - start
                rate = done / (now - began) if now > began else 0.0
                eta = (n - index - 1) / rate if rate else float("nan")
                self.say(f"seeded {index + 1:,}/{n:,} cases ({rate:.1f} cases/s, "
                         f"{self.figures.changes:,} changes; about {eta:.0f} s to go)")
            if now > deadline:
                self.say(f"seeding stopped at its cap with {index + 1:,} of {n:,} cases")
                break
        self.figures.seconds += time.monotonic() - began
        if self.cache is not None and self.figures.cases == n and start < n:
            self._save(n)

    def _grow_in_parallel(self, n: int, *, deadline: float, processes: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        began = time.monotonic()
        start = self.figures.cases
        self.say(f"seeding cases {start:,} to {n - 1:,} in {processes} processes")
        shares = [list(range(start + share, n, processes)) for share in range(processes)]
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_seed_share, [self.settings] * processes, shares, [deadline] * processes,
                                    range(1, processes + 1)))
        refs = {index: ref for share, _changes in results for index, ref in share.items()}
        for index in range(start, n):
            if index not in refs:
                break  # a share stopped at the cap: the store holds the cases before this one
            self._add(index, refs[index], plan_case(index, calendar=self.service.calendar))
            self.figures.cases_seeded += 1
        changes = sum(changes for _share, changes in results)
        self.figures.changes += changes
        self.figures.changes_seeded += changes
        self.figures.delivered += mark_history_sent(self.service)
        self.figures.seconds += time.monotonic() - began
        self.say(f"seeded {self.figures.cases:,}/{n:,} cases ({self.figures.cases_per_second:.1f} cases/s "
                 f"in {processes} processes)")

    def _add(self, index: int, ref: str, plan: CasePlan) -> None:
        self.case_refs[index] = ref
        self.plans[index] = plan
        self.figures.stages[plan.stage.value] = self.figures.stages.get(plan.stage.value, 0) + 1
        self.figures.behind += plan.behind
        self.figures.cases = index + 1

    def _restore(self, n: int) -> None:
        assert self.cache is not None
        usable = [size for size in self.cache.sizes() if self.figures.cases < size <= n]
        if not usable:
            return
        size = usable[-1]
        saved = json.loads(self.cache.path(size).with_suffix(".json").read_text())
        self.service.store.dispose()
        _copy_sqlite(self.cache.path(size), _sqlite_path(self.settings))
        self.service, self.clock = open_service(self.settings)
        self.case_refs, self.plans, self.figures.stages, self.figures.behind = {}, {}, {}, 0
        for index in range(size):
            self._add(index, saved["case_refs"][index], plan_case(index, calendar=self.service.calendar))
        self.figures.changes = saved["changes"]
        self.figures.reused_cases, self.figures.reused_seconds = size, saved["seconds"]
        self.figures.reused_on = saved["seeded_on"]
        self.say(f"reusing the {size:,}-case store an earlier run seeded with this code on "
                 f"{saved['seeded_on']} (it took {saved['seconds']:.0f} s then)")

    def _save(self, n: int) -> None:
        assert self.cache is not None
        for other in self.cache.root.glob("*"):
            if other.is_dir() and other != self.cache.folder:
                shutil.rmtree(other, ignore_errors=True)
        _copy_sqlite(_sqlite_path(self.settings), self.cache.path(n))
        seconds = self.figures.reused_seconds + self.figures.seconds
        self.cache.path(n).with_suffix(".json").write_text(json.dumps({
            "cases": n, "changes": self.figures.changes, "seconds": round(seconds, 1),
            "seeded_on": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "case_refs": [self.case_refs[index] for index in range(n)]}))

    def copy_to(self, target: Settings) -> None:
        """A consistent copy of the store as it stands, for one configuration to use."""
        _copy_sqlite(_sqlite_path(self.settings), _sqlite_path(target))
        cache = self.settings.data_dir / "cache"
        if cache.is_dir():
            shutil.copytree(cache, target.data_dir / "cache", dirs_exist_ok=True)

    def dispose(self) -> None:
        self.service.store.dispose()


def _seed_share(settings: Settings, indices: list[int], deadline: float,
                number: int) -> tuple[dict[int, str], int]:
    """One process's share of a parallel seeding: the cases `indices`, in order, until `deadline`.
    Its case references, by case number, and the changes it made."""
    service, clock = open_service(settings)
    refs: dict[int, str] = {}
    changes = 0
    shown = time.monotonic()
    try:
        for count, index in enumerate(indices, 1):
            ref: str | None = None
            for move in plan_case(index, calendar=service.calendar).moves:
                ref = apply_move(service, clock, move, case_ref=ref)
                changes += 1
            assert ref is not None
            refs[index] = ref
            if time.monotonic() - shown >= 15.0:
                shown = time.monotonic()
                print(f"[seed {number}] {count:,}/{len(indices):,} cases", flush=True)
            if time.monotonic() > deadline:
                break
    finally:
        service.store.dispose()
    return refs, changes


def catch_up(settings: Settings, say: Say, *, as_of: datetime = SEEDED_AS_OF,
             deadline: float) -> tuple[int, int, float]:
    """Fire, in order and each at its own time, every timer of the store at `settings` due by
    `as_of` (an escalation schedules the next, which may be due too), as the build fires them
    (`bench.build`), then mark what they queued sent. Returns the alerts sent, the emails marked
    and the seconds it took."""
    began = time.monotonic()
    service, clock = open_service(settings)
    timers = detect(service.registry).timers
    fired = 0
    try:
        while time.monotonic() < deadline:
            due = [timer for timer in service.timers() if timer.fire_at <= as_of]
            if not due:
                break
            say(f"bringing the store to {as_of:%a %d %b %H:%M}: {len(due):,} timers due")
            fired += timers.fire_in_store(service, clock, due=due)
        _set(clock, as_of)
        delivered = mark_history_sent(service)
    finally:
        service.store.dispose()
    return fired, delivered, time.monotonic() - began

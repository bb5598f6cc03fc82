"""The benchmark's seeded cases: each stands where its stage says, through the real case service,
and the step it records next goes through `sbu` with the options the harness builds."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.build import scheduled_timers
from bench.mix import PATTERN, SEEDED_AS_OF, Stage, plan_case
from bench.runner import cli_options
from bench.seed import Seeder, catch_up, open_service
from deployments.cli import main
from models.calendar import london_date, london_time
from models.schema import OutboxStatus
from models.settings import Settings
from tasks.mail.outbox import outbox_counts
from tasks.service import CaseService

pytestmark = pytest.mark.slow

# The wait each stage's case stands at: its process, and the wait's name.
WAITING_ON = {
    Stage.AWAITING_DECISION: ("case", "dsp-decision"),
    Stage.NOTIFICATION: ("case", "notification"),
    Stage.RR_RESPONSES: ("rapid-review", "rr-meeting"),
    Stage.RR_NEAR_MISS: ("rapid-review", "rr-meeting"),
    Stage.RR_OUTCOME: ("rapid-review", "rr-outcome"),
    Stage.CSPR_IMRS: ("cspr", "cspr-evidence"),
    Stage.ACTION_PLAN: ("action-plan", "actions"),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Seeder]:
    root = tmp_path_factory.mktemp("bench")
    seeder = Seeder(Settings(data_dir=root / "master"), lambda _line: None)
    # One turn of the pattern, and the first case of the next (behind, as case 0 is).
    seeder.grow_to(len(PATTERN) + 1, deadline=time.monotonic() + 600)
    target = Settings(data_dir=root / "copy")
    seeder.copy_to(target)
    catch_up(target, lambda _line: None, deadline=time.monotonic() + 600)
    seeder.dispose()
    return target, seeder


def reading(settings: Settings) -> CaseService:
    service, _clock = open_service(settings)
    return service


def test_every_case_stands_at_its_stages_wait(seeded: tuple[Settings, Seeder]) -> None:
    settings, seeder = seeded
    service = reading(settings)
    try:
        for index, plan in seeder.plans.items():
            view = service.case_view(seeder.case_refs[index])
            process, wait = WAITING_ON[plan.stage]
            current = service.registry.process(process).current_wait(view)
            assert (current.name if current else None) == wait, (index, plan.stage)
            overdue = [item.label for item in view.steps if item.is_open and item.overdue]
            assert bool(overdue) is plan.behind, (index, plan.stage, overdue)
    finally:
        service.store.dispose()


def test_the_mix_has_every_stage_and_some_cases_behind(seeded: tuple[Settings, Seeder]) -> None:
    _settings, seeder = seeded
    assert set(seeder.figures.stages) == {stage.value for stage in Stage}
    assert 1 <= seeder.figures.behind <= 3


def test_the_store_is_brought_to_its_moment(seeded: tuple[Settings, Seeder]) -> None:
    settings, _seeder = seeded
    service = reading(settings)
    try:
        timers = service.timers()
        assert timers
        assert all(timer.fire_at > SEEDED_AS_OF for timer in timers)
        # The benchmark's cheap count agrees with the service's own list.
        assert scheduled_timers(service) == len(timers)
        assert scheduled_timers(service, due_by=SEEDED_AS_OF) == 0
        # Overdue items are escalated at 09:00 every working day: the next is tomorrow's.
        tomorrow = london_time(service.calendar.next_working_day(london_date(SEEDED_AS_OF)),
                               SEEDED_AS_OF.replace(hour=9).timetz())
        assert any(timer.fire_at == tomorrow and timer.kind.value == "escalation" for timer in timers)
        assert scheduled_timers(service, due_by=tomorrow) == sum(1 for t in timers if t.fire_at <= tomorrow)
        with service.store.reading() as session:
            assert outbox_counts(session)[OutboxStatus.PENDING] == 0
    finally:
        service.store.dispose()


def test_a_case_number_always_gives_the_same_case(seeded: tuple[Settings, Seeder]) -> None:
    # So the first 100 cases of a 10,000-case store are the 100-case store.
    from tasks.holiday_cache import calendar_for

    _settings, seeder = seeded
    calendar = calendar_for(Settings())
    for index, plan in seeder.plans.items():
        again = plan_case(index, calendar=calendar)
        assert (again.stage, again.behind, again.moves) == (plan.stage, plan.behind, plan.moves)
        assert plan.stage is PATTERN[index % len(PATTERN)]


def test_each_next_step_records_through_sbu(seeded: tuple[Settings, Seeder], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings, seeder = seeded
    day = london_date(SEEDED_AS_OF) + timedelta(days=1)
    for name in ("SBU_DATABASE_URL", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SBU_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SBU_TIME_EPOCH", datetime.now(UTC).isoformat())
    monkeypatch.setenv("SBU_TIME_START", london_time(day, SEEDED_AS_OF.replace(hour=9).timetz()).isoformat())
    service = reading(settings)
    try:
        for index, plan in seeder.plans.items():
            move = plan.next_move(day)
            ref = seeder.case_refs[index]
            verb = ["decide", ref] if move.name == "dsp-decision" else ["record", ref, move.name]
            err = io.StringIO()
            with redirect_stdout(io.StringIO()), redirect_stderr(err):
                code = main([*verb, *cli_options(move, service.registry)])
            assert code == 0, (index, move.name, err.getvalue())
            counts = service.case_view(ref).record_counts
            assert counts.get(move.name, 0) >= 1, (index, move.name)
    finally:
        service.store.dispose()

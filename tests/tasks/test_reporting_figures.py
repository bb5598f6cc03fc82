"""The report's, the digest's and the progress summary's figures (`models.reporting`), checked exactly
on cases driven through the real case service and read back from the store (SQLite, and PostgreSQL
where reachable). `tests/tasks/report_cases.py` says what happens to each case and why each count
below is what it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from models.clock import FixedClock
from models.enums import Agency, CasePath, Category, ReviewRoute, Stage, StepState
from models.reporting import (
    DigestFigures,
    OpenAction,
    ProgressEntry,
    ReportFigures,
    Timing,
    digest_figures,
    progress_summary,
    report_figures,
)
from models.schedules import Period
from models.settings import Settings
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW, postgres_schema_url
from tests.tasks.report_cases import AS_OF, AWAITING, CLOSED, EARLIER, NEAR_MISS, NOTIFIED, YEAR, drive_cases


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def driven(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaseService]:
    """The five cases, driven once per database for this module's tests, which only read them."""
    data_dir = tmp_path_factory.mktemp("report-cases")
    urls = (iter([f"sqlite:///{data_dir / 'sbu.db'}"]) if request.param == "sqlite"
            else postgres_schema_url())
    url = next(urls)
    settings = Settings(data_dir=data_dir, database_url=url)
    store = Store(url).migrate()
    clock = FixedClock(EXAMPLE_NOW)
    service = CaseService(store=store, settings=settings, clock=clock)
    drive_cases(service, clock)
    yield service
    store.dispose()
    next(urls, None)  # drops the PostgreSQL schema


def figures_of(service: CaseService, period: Period = YEAR) -> ReportFigures:
    return report_figures(service.list_cases(), period=period, as_of=AS_OF, calendar=service.calendar,
                          partnership="default", registry=service.registry)


def test_the_report_counts_the_cases_referred_in_the_period(driven: CaseService) -> None:
    figures = figures_of(driven)
    assert figures.case_refs == (NOTIFIED, NEAR_MISS, CLOSED, AWAITING)  # not EARLIER: March 2026
    assert figures_of(driven, Period(date(2026, 3, 31), date(2026, 3, 31))).case_refs == (EARLIER,)
    # Both ends are included: referred on 7 and 20 January 2027.
    assert figures_of(driven, Period(date(2027, 1, 7), date(2027, 1, 20))).case_refs == (CLOSED, AWAITING)
    assert figures_of(driven, Period(date(2027, 2, 1), date(2027, 3, 31))).case_refs == ()


def test_timeliness_per_step(driven: CaseService) -> None:
    rows = {row.step: (row.on_time, row.late, row.open_overdue, row.open, row.median_days_late)
            for row in figures_of(driven).timeliness}
    assert rows == {
        # on time, late, open and overdue, open and not yet due, median working days late
        "dsp-decision": (3, 0, 0, 1, None),             # the awaiting case is due today
        "sin-submission": (1, 0, 0, 0, None),
        "partners-informed": (0, 1, 0, 0, 1.0),         # due Thu 31 Dec, done Mon 4 Jan
        "rr-agency-responses": (2, 2, 2, 0, 2.5),       # late by 2 and 3; education and health open
        "rr-meeting": (1, 0, 0, 1, None),
        "rr-outcome": (0, 1, 0, 0, 1.0),
        "rr-report-to-panel": (0, 0, 1, 0, None),       # due Wed 20 Jan
        "rr-action-plan": (0, 0, 0, 1, None),
        "cspr-reviewer-appointed": (1, 0, 0, 0, None),
        "cspr-terms-of-reference": (0, 0, 0, 1, None),
        "cspr-imr-requests": (0, 0, 0, 1, None),
        "cspr-family-engagement": (0, 0, 0, 1, None),
        "cspr-draft-report": (0, 0, 0, 1, None),
        "cspr-final-report": (0, 0, 0, 1, None),
        "cspr-report-to-panel": (0, 0, 0, 1, None),
        "cspr-publication": (0, 0, 0, 1, None),
        "action": (0, 0, 1, 1, None),
    }
    figures = figures_of(driven)
    assert list(rows)[:3] == ["dsp-decision", "sin-submission", "partners-informed"]  # the procedure's order
    assert [figures.total(timing) for timing in (Timing.ON_TIME, Timing.LATE, Timing.OPEN_OVERDUE,
                                                 Timing.OPEN)] == [8, 4, 4, 11]


def test_cases_by_path_and_stage_and_the_rapid_reviews_converted(driven: CaseService) -> None:
    figures = figures_of(driven)
    assert dict(figures.by_path) == {"sin-and-rapid-review": 1, "sin-only": 0, "rapid-review-only": 0,
                                     "near-miss-rapid-review": 1, "no-further-action": 1,
                                     "awaiting-decision": 1}
    assert dict(figures.by_stage) == {"awaiting-decision": 1, "notification": 0, "rapid-review": 1,
                                      "cspr": 0, "action-plan": 1, "closed": 1}
    conversion = figures.conversion
    assert (conversion.rapid_reviews, conversion.csprs, conversion.rate) == (2, 1, 0.5)
    assert dict(conversion.routes) == {"local-cspr": 1, "no-cspr": 0, "national-review": 0,
                                       "not-yet-decided": 1}


def test_open_actions_by_age_in_working_days(driven: CaseService) -> None:
    figures = figures_of(driven)
    # a1 added Wed 13 Jan: 14, 15, 18, 19, 20, 21 Jan is 6 working days; a2 added Thu 14 Jan: 5.
    assert figures.open_actions == (
        OpenAction(NOTIFIED, "a1", Agency.HEALTH, date(2027, 1, 13), date(2027, 1, 20), 6, True),
        OpenAction(NOTIFIED, "a2", Agency.POLICE, date(2027, 1, 14), date(2027, 3, 31), 5, False))
    assert dict(figures.action_ages) == {"0-5": 1, "6-20": 1, "21-60": 0, "over 60": 0}


def test_each_cases_timeline_and_row(driven: CaseService) -> None:
    figures = figures_of(driven)
    timelines = {timeline.case_ref: timeline.bars for timeline in figures.timelines}
    assert list(timelines) == [NOTIFIED, NEAR_MISS, CLOSED, AWAITING]
    bars = {bar.label: bar for bar in timelines[NOTIFIED]}
    assert len(bars) == 21  # every item of the case, none cancelled
    partners = bars["partners-informed"]
    assert (partners.anchor_on, partners.due, partners.done_on, partners.timing) == (
        date(2026, 12, 22), date(2026, 12, 31), date(2027, 1, 4), Timing.LATE)
    education = bars["rr-agency-responses:education"]
    assert (education.done_on, education.timing) == (None, Timing.OPEN_OVERDUE)
    # Due seven working days before the planned publication date: its anchor is after its due date.
    report = bars["cspr-report-to-panel"]
    assert (report.anchor_on, report.due) == (date(2027, 7, 13), date(2027, 7, 2))
    assert [bar.due for bar in timelines[NOTIFIED]] == sorted(bar.due for bar in timelines[NOTIFIED])

    rows = {row.case_ref: row for row in figures.cases}
    notified = rows[NOTIFIED]
    assert (notified.category, notified.path, notified.review, notified.stage) == (
        Category.SERIOUS_HARM, CasePath.SIN_AND_RAPID_REVIEW, ReviewRoute.LOCAL_CSPR, Stage.ACTION_PLAN)
    assert (notified.referred, notified.decided, notified.sin_submitted, notified.rr_meeting_held,
            notified.cspr_commissioned, notified.published) == (
        date(2026, 12, 23), date(2026, 12, 23), date(2026, 12, 29), date(2027, 1, 11), date(2027, 1, 13),
        None)
    assert (notified.on_time, notified.late, notified.open) == (5, 4, 12)
    others = (rows[NEAR_MISS], rows[CLOSED], rows[AWAITING])
    assert [(row.on_time, row.late, row.open, row.stage) for row in others] == [
        (2, 0, 2, Stage.RAPID_REVIEW), (1, 0, 0, Stage.CLOSED), (0, 0, 1, Stage.AWAITING_DECISION)]


def test_the_digest_lists_the_open_items_of_the_open_cases(driven: CaseService) -> None:
    figures: DigestFigures = digest_figures(driven.list_cases(), day=AS_OF, calendar=driven.calendar)
    assert figures.open_cases == 4  # every case but the closed one, the earlier year's included
    assert figures.horizon_end == date(2027, 1, 28)  # 22, 25, 26, 27, 28 Jan
    items = {(entry.case_ref, entry.item.label): entry.item.due for entry in figures.items}
    assert len(items) == 16  # 1 + 12 + 2 + 1
    assert all(entry.item.state is StepState.OPEN for entry in figures.items)
    overdue = sorted(key for key, due in items.items() if due < AS_OF)
    assert overdue == [(EARLIER, "dsp-decision"), (NOTIFIED, "action:a1"),
                       (NOTIFIED, "rr-agency-responses:education"), (NOTIFIED, "rr-report-to-panel"),
                       (NEAR_MISS, "rr-agency-responses:health")]
    assert [key for key, due in items.items() if due == AS_OF] == [(AWAITING, "dsp-decision")]
    assert sorted(key for key, due in items.items() if AS_OF < due <= figures.horizon_end) == [
        (NOTIFIED, "cspr-imr-requests"), (NEAR_MISS, "rr-meeting")]


def test_the_progress_summary_of_the_open_reviews(driven: CaseService) -> None:
    summary = progress_summary(driven.list_cases(), day=AS_OF, calendar=driven.calendar,
                               registry=driven.registry)
    assert [review.case_ref for review in summary.reviews] == [NOTIFIED, NEAR_MISS]
    notified, near_miss = summary.reviews
    assert (notified.stage, notified.review, near_miss.stage) == (
        Stage.ACTION_PLAN, ReviewRoute.LOCAL_CSPR, Stage.RAPID_REVIEW)

    def entries(values: tuple[ProgressEntry, ...]) -> list[tuple[str, date, int]]:
        return [(entry.label, entry.due, entry.days_late) for entry in values]

    # Education's information was due Wed 6 Jan: 7, 8, 11..15, 18..21 Jan is 11 working days late.
    assert entries(notified.late) == [("rr-agency-responses:education", date(2027, 1, 6), 11),
                                      ("action:a1", date(2027, 1, 20), 1),
                                      ("rr-report-to-panel", date(2027, 1, 20), 1)]
    assert entries(notified.next) == [("cspr-imr-requests", date(2027, 1, 27), 0),
                                      ("cspr-terms-of-reference", date(2027, 2, 10), 0),
                                      ("rr-action-plan", date(2027, 2, 10), 0)]
    assert notified.more == 6
    assert entries(near_miss.late) == [("rr-agency-responses:health", date(2027, 1, 19), 2)]
    assert (entries(near_miss.next), near_miss.more) == ([("rr-meeting", date(2027, 1, 26), 0)], 0)
    assert summary.late_reviews == 2

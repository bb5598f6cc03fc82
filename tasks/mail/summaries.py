"""The emails of the scheduled deployments, from the figures `models.reporting` computes: the daily
digest, the monthly progress summary and the yearly report's notice. Each item is carried as its
identifiers (case reference, step id, subject) and, for a step a registered process brought, its
rule's title; the builders in `tasks.mail.messages` write the email."""

from __future__ import annotations

from models.processes import STEP_RULES
from models.reporting import DigestFigures, ProgressEntry, ProgressSummary, ReportFigures, Timing
from models.schedules import Period
from tasks.mail import messages
from tasks.mail.checked import StepName, StepTitle, Subject
from tasks.mail.directory import Directory
from tasks.mail.messages import DigestRow, ProgressItem, ProgressRow, ReportHeadline
from tasks.mail.rendering import EmailDraft


def _title(step: str, title: str) -> StepTitle | None:
    # The procedure's own steps are titled by the builders from their rules.
    return None if step in STEP_RULES else StepTitle(title)


def daily_digest_draft(figures: DigestFigures, *, directory: Directory, dashboard_url: str,
                       partnership: str) -> EmailDraft:
    rows = [DigestRow(case_ref=entry.case_ref, step=StepName(entry.item.step),
                      subject=Subject(entry.item.subject) if entry.item.subject else None,
                      title=_title(entry.item.step, entry.item.title), due=entry.item.due,
                      state=entry.item.state, overdue=entry.item.due < figures.day)
            for entry in figures.items]
    return messages.daily_digest_email(day=figures.day, rows=rows, open_cases=figures.open_cases,
                                       horizon_end=figures.horizon_end, directory=directory,
                                       dashboard_url=dashboard_url, partnership=partnership)


def _progress_item(entry: ProgressEntry) -> ProgressItem:
    return ProgressItem(step=StepName(entry.step), subject=Subject(entry.subject) if entry.subject else None,
                        title=_title(entry.step, entry.title), due=entry.due, days_late=entry.days_late)


def progress_rows(summary: ProgressSummary) -> list[ProgressRow]:
    return [ProgressRow(case_ref=review.case_ref, stage=review.stage, path=review.path, review=review.review,
                        late=tuple(_progress_item(entry) for entry in review.late),
                        next=tuple(_progress_item(entry) for entry in review.next), more=review.more)
            for review in summary.reviews]


def progress_summary_draft(summary: ProgressSummary, *, directory: Directory, dashboard_url: str,
                           partnership: str) -> EmailDraft:
    return messages.progress_summary_email(day=summary.day, reviews=progress_rows(summary),
                                           directory=directory, dashboard_url=dashboard_url,
                                           partnership=partnership)


def headline(figures: ReportFigures) -> ReportHeadline:
    """The report's counts that its notice gives."""
    return ReportHeadline(cases=len(figures.cases), on_time=figures.total(Timing.ON_TIME),
                          late=figures.total(Timing.LATE), open_overdue=figures.total(Timing.OPEN_OVERDUE),
                          rapid_reviews=figures.conversion.rapid_reviews, csprs=figures.conversion.csprs,
                          open_actions=len(figures.open_actions))


def report_ready_draft(period: Period, summary: ReportHeadline, *, directory: Directory, dashboard_url: str,
                       partnership: str) -> EmailDraft:
    return messages.report_ready_email(period_start=period.start, period_end=period.end, headline=summary,
                                       directory=directory, dashboard_url=dashboard_url,
                                       partnership=partnership)

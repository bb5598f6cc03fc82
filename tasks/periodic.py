"""The work of the scheduled deployments, one side effect each, on the case service's store,
settings, calendar and directory: queue the daily digest, queue the monthly progress summary,
write the yearly report, queue its notice. The Prefect tasks in `tasks.scheduled` call these; tests
call them directly. Every email is queued in the outbox under a key of its partnership and day (or
month, or year), so a retried or repeated run queues nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.reporting import DigestFigures, ProgressSummary, digest_figures, progress_summary, report_figures
from models.schedules import Period, reporting_year_before
from models.state import CaseState
from tasks.mail.messages import ReportHeadline
from tasks.mail.outbox import mail_domain, queue_email
from tasks.mail.rendering import EmailDraft
from tasks.mail.summaries import daily_digest_draft, headline, progress_summary_draft, report_ready_draft
from tasks.reports.writer import ReportFiles, default_folder, write_report
from tasks.service import CaseService
from tasks.store.queries import case_views


def read_cases(service: CaseService, *, day: date) -> list[CaseState]:
    """Every case of the partnership, its open items overdue if due before `day`."""
    return case_views(service.store.engine, partnership=service.settings.partnership, today=day)


def queue(service: CaseService, draft: EmailDraft) -> bool:
    """Queue `draft` in the outbox in a transaction of its own; False if its key was queued before."""
    with service.store.transaction() as session:
        return queue_email(session, draft, case_id=None, now=service.clock.now(),
                           mail_from_domain=mail_domain(service.settings.mail_from))


@dataclass(frozen=True, slots=True)
class DigestQueued:
    """What a daily digest said, in counts, and whether it was queued (False: already queued)."""

    day: date
    queued: bool
    open_cases: int
    overdue: int
    due_today: int
    due_soon: int


def queue_daily_digest(service: CaseService, *, day: date) -> DigestQueued:
    """Queue the SBU's digest for `day`: open cases, and the open items overdue, due today and due
    in the next five working days."""
    figures: DigestFigures = digest_figures(read_cases(service, day=day), day=day, calendar=service.calendar)
    settings = service.settings
    draft = daily_digest_draft(figures, directory=service.directory, dashboard_url=settings.dashboard_url,
                               partnership=settings.partnership)
    dues = [entry.item.due for entry in figures.items]
    return DigestQueued(day=day, queued=queue(service, draft), open_cases=figures.open_cases,
                        overdue=sum(1 for due in dues if due < day), due_today=dues.count(day),
                        due_soon=sum(1 for due in dues if day < due <= figures.horizon_end))


def read_progress_summary(service: CaseService, *, day: date) -> ProgressSummary:
    return progress_summary(read_cases(service, day=day), day=day, calendar=service.calendar,
                            registry=service.registry)


def queue_progress_summary(service: CaseService, summary: ProgressSummary) -> bool:
    """Queue the month's progress summary to the SBU and the three DSPs."""
    settings = service.settings
    return queue(service, progress_summary_draft(summary, directory=service.directory,
                                                 dashboard_url=settings.dashboard_url,
                                                 partnership=settings.partnership))


@dataclass(frozen=True, slots=True)
class YearlyReport:
    """A yearly report written: its period, its folder and its headline counts."""

    period: Period
    folder: str
    headline: ReportHeadline


def write_yearly_report(service: CaseService, *, day: date) -> YearlyReport:
    """Write the report on the reporting year before `day` (1 April to 31 March) under
    `<data dir>/reports/<from>_<to>/`, with its CSV, as the cases stand on `day`."""
    period = reporting_year_before(day)
    figures = report_figures(read_cases(service, day=day), period=period, as_of=day,
                             calendar=service.calendar, partnership=service.settings.partnership,
                             registry=service.registry)
    files: ReportFiles = write_report(figures, folder=default_folder(service.settings.data_dir, figures),
                                      with_csv=True)
    return YearlyReport(period=period, folder=str(files.folder), headline=headline(figures))


def queue_report_ready(service: CaseService, report: YearlyReport) -> bool:
    """Queue the notice to the SBU that the yearly report is written."""
    settings = service.settings
    return queue(service, report_ready_draft(report.period, report.headline, directory=service.directory,
                                             dashboard_url=settings.dashboard_url,
                                             partnership=settings.partnership))

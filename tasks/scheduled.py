"""Prefect tasks for the scheduled deployments (the daily digest, the monthly progress summary, the
yearly report): each does one thing through `tasks.periodic`, on the flow process's case service.
None is cached: every run must look at the store afresh; the outbox's keys make queueing again
harmless."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.cache_policies import NO_CACHE

from models.calendar import london_date
from models.reporting import ProgressSummary
from models.schedules import RunDay, run_day
from tasks import periodic, runtime
from tasks.periodic import DigestQueued, YearlyReport


@task(cache_policy=NO_CACHE, persist_result=False)
def read_run_day(*, day: date | None = None) -> RunDay:
    """`day`, or today's London date on the case clock, and what the schedules make of it."""
    service = runtime.service()
    return run_day(day or london_date(service.clock.now()), service.calendar)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def queue_daily_digest(*, day: date) -> DigestQueued:
    return periodic.queue_daily_digest(runtime.service(), day=day)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def read_progress_summary(*, day: date) -> ProgressSummary:
    return periodic.read_progress_summary(runtime.service(), day=day)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def queue_progress_summary(*, summary: ProgressSummary) -> bool:
    return periodic.queue_progress_summary(runtime.service(), summary)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def publish_progress_summary(*, summary: ProgressSummary) -> str:
    """Publish the summary as a Markdown artifact keyed by partnership and month (a later run of
    the same month adds a version of the same artifact); return its key."""
    from prefect.artifacts import create_markdown_artifact

    from tasks.reports.documents import render_progress_markdown

    partnership = runtime.settings().partnership
    key = f"progress-summary-{partnership}-{summary.day:%Y-%m}"
    create_markdown_artifact(key=key, markdown=render_progress_markdown(summary, partnership=partnership),
                             description=f"Progress summary of the open reviews, {summary.day:%B %Y}")
    return key


@task(cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=2)
def write_yearly_report(*, day: date) -> YearlyReport:
    return periodic.write_yearly_report(runtime.service(), day=day)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=2)
def queue_report_ready(*, report: YearlyReport) -> bool:
    return periodic.queue_report_ready(runtime.service(), report)

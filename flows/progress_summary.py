"""The `progress-summary` flow: the monthly progress summary of every open review (reg 14)."""

# No `from __future__ import annotations` (see flows/daily_digest.py).
from datetime import date

from prefect import flow, get_run_logger

from tasks.prefect.ops import deliver_mail
from tasks.scheduled import (
    publish_progress_summary,
    queue_progress_summary,
    read_progress_summary,
    read_run_day,
)


@flow(name="progress-summary", flow_run_name="progress-summary", persist_result=False)
def progress_summary(day: date | None = None) -> str:
    """Send the monthly progress summary of every open review (a Rapid Review or a CSPR with a step
    still open) to the SBU and the three DSPs, and publish it as this run's Markdown artifact
    (key `progress-summary-<partnership>-<yyyy>-<mm>`): for each case its stage and route, each
    late step with its due date and how many working days late, and what comes next. The
    safeguarding partners must monitor the time reviews take (Regulations 2018, reg 14).

    Scheduled at 08:00 London time on each of the first seven days of the month; the run sends on
    the month's first working day (bank holidays and closure days skipped) and ends quietly on the
    others. One summary per partnership and month: a second run in the same month sends nothing
    more. To send a month's summary that was missed, run it with `day` (YYYY-MM-DD): a run given a
    day sends the summary as of that day, whatever day it is. Without one it is today on the case
    clock. The summary carries case references, step ids, step titles and dates only.
    """
    logger = get_run_logger()
    today = read_run_day(day=day)
    if not today.month_start and day is None:
        logger.info("%s is not the month's first working day: no summary", today.day.isoformat())
        return f"no summary: {today.day.isoformat()} is not the month's first working day"
    summary = read_progress_summary(day=today.day)
    queued = queue_progress_summary(summary=summary)
    key = publish_progress_summary(summary=summary)
    deliver_mail()
    logger.info("progress summary for %s %s (artifact %s): %d open reviews, %d with steps late",
                f"{today.day:%Y-%m}", "queued" if queued else "was already queued", key,
                len(summary.reviews), summary.late_reviews)
    return f"progress summary for {today.day:%Y-%m} {'queued' if queued else 'already queued'}"

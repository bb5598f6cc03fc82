"""The `daily-digest` flow: the SBU's morning email of what is overdue and what is due."""

# No `from __future__ import annotations`: the runner ships this flow to its child process with
# cloudpickle, and a postponed `date` annotation would name nothing the copy can see (see
# flows/reconcile.py).
from datetime import date

from prefect import flow, get_run_logger

from tasks.prefect.ops import deliver_mail
from tasks.scheduled import queue_daily_digest, read_run_day


@flow(name="daily-digest", flow_run_name="daily-digest", persist_result=False)
def daily_digest(day: date | None = None) -> str:
    """Email the SBU inbox the daily digest: how many cases are open, which steps are overdue,
    which are due today, and which are due in the next five working days (each by case reference,
    step and due date).

    Scheduled at 08:00 London time, Monday to Friday. On a bank holiday or one of the partnership's
    closure days the run finds it is not a working day and ends without sending anything. One
    digest per partnership and day: running it again the same day sends nothing more. A run given
    `day` (YYYY-MM-DD) sends the digest as of that day, whatever day it is; without one it is
    today on the case clock.

    The run logs dates and counts only.
    """
    logger = get_run_logger()
    today = read_run_day(day=day)
    if not today.working and day is None:
        logger.info("%s is not a working day (%s): no digest", today.day.isoformat(), today.closed)
        return f"no digest: {today.day.isoformat()} is not a working day ({today.closed})"
    digest = queue_daily_digest(day=today.day)
    deliver_mail()
    logger.info("digest for %s %s: %d open cases, %d overdue, %d due today, %d due within five working days",
                today.day.isoformat(), "queued" if digest.queued else "was already queued",
                digest.open_cases, digest.overdue, digest.due_today, digest.due_soon)
    return f"digest for {today.day.isoformat()} {'queued' if digest.queued else 'already queued'}"

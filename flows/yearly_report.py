"""The `yearly-report` flow: the report on the reporting year just ended, and its notice."""

# No `from __future__ import annotations` (see flows/daily_digest.py).
from datetime import date

from prefect import flow, get_run_logger

from tasks.prefect.ops import deliver_mail
from tasks.scheduled import queue_report_ready, read_run_day, write_yearly_report


@flow(name="yearly-report", flow_run_name="yearly-report", persist_result=False)
def yearly_report(day: date | None = None) -> str:
    """Write the report on the cases referred in the reporting year just ended (1 April to 31
    March) under `reports/<from>_<to>/` in the data directory: report.html with its charts,
    report.md and cases.csv (one row per case, for the national returns); then email the SBU inbox
    that it is ready, with its headline counts. The same report as `sbu report --from ... --to ...
    --csv`.

    Scheduled at 08:00 London time on each of the first seven days of April; the run writes the
    report on April's first working day and ends quietly on the others. A run given `day`
    (YYYY-MM-DD) writes the report for the reporting year before that day, as the cases stand that
    day, whatever day it is; without one it is today on the case clock. Writing it again replaces
    the files; the email is sent once per year.
    """
    logger = get_run_logger()
    today = read_run_day(day=day)
    if not today.year_start and day is None:
        logger.info("%s is not April's first working day: no report", today.day.isoformat())
        return f"no report: {today.day.isoformat()} is not April's first working day"
    report = write_yearly_report(day=today.day)
    queued = queue_report_ready(report=report)
    deliver_mail()
    logger.info("yearly report %s written to %s (%d cases); notice %s", report.period.label, report.folder,
                report.headline.cases, "queued" if queued else "was already queued")
    return f"yearly report {report.period.label} written"

"""`sbu report`: the report on the cases referred in a period, with charts, for the SBU and the
partners (and, with --csv, the national returns).

matplotlib, Jinja2 and the store are imported inside the command: only this command pays for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deployments.cli.app import command, echo, fail, json_option, print_json


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", required=True, metavar="DATE",
                        help="The first day of the period (YYYY-MM-DD): cases referred on or after it "
                             "are counted.")
    parser.add_argument("--to", dest="end", required=True, metavar="DATE",
                        help="The last day of the period (YYYY-MM-DD), included.")
    parser.add_argument("--out", metavar="DIR",
                        help="The folder to write into (default: reports/FROM_TO/ in the data directory).")
    parser.add_argument("--csv", action="store_true",
                        help="Also write cases.csv: one row per case, for the national returns.")
    json_option(parser, "the files written")


@command("report", _report_arguments)
def report(args: argparse.Namespace) -> None:
    """Write a report on the cases referred in a period, as they stand today: timeliness per step
    (on time, late, open and overdue, median lateness in working days), cases by path and by stage,
    Rapid Reviews converted to CSPRs, open actions by age, and a timeline of each case. Writes
    report.md and report.html with PNG charts under charts/, and cases.csv with --csv; prints where.
    With --json, prints the figures instead. Progress goes to stderr.

    Example: sbu report --from 2026-04-01 --to 2027-03-31 --csv
    Example: sbu report --from 2027-01-01 --to 2027-03-31 --out quarter-1 --json
    """
    from deployments.cli.parsing import parse_day
    from models.schedules import Period

    start = parse_day(args.start, field_name="--from")
    end = parse_day(args.end, field_name="--to")
    if end < start:
        fail("--to cannot be before --from")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        fail("--out names a file; give a folder")

    def progress(message: str) -> None:
        echo(f"sbu report: {message}", err=True)

    progress("reading the cases")
    from models.calendar import london_date
    from models.processes import build_registry
    from models.reporting import report_figures
    from models.settings import load_settings
    from tasks.holiday_cache import calendar_for
    from tasks.store.db import Store
    from tasks.store.queries import case_views

    settings = load_settings()
    today = london_date(settings.clock().now())
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        cases = case_views(store.engine, partnership=settings.partnership, today=today)
    finally:
        store.dispose()
    progress(f"counting the cases referred from {start.isoformat()} to {end.isoformat()}")
    figures = report_figures(cases, period=Period(start, end), as_of=today, calendar=calendar_for(settings),
                             partnership=settings.partnership,
                             registry=build_registry(settings.process_modules))
    from tasks.reports.writer import default_folder, write_report

    folder = out if out is not None else default_folder(settings.data_dir, figures)
    try:
        files = write_report(figures, folder=folder, with_csv=args.csv, progress=progress)
    except OSError as error:
        fail(f"cannot write the report into its folder ({error.__class__.__name__})")
    progress(f"done: {len(figures.cases)} cases counted")
    if args.as_json:
        print_json({"files": files.as_json(), "figures": figures.as_json()})
        return
    echo(f"wrote the report on {len(figures.cases)} cases referred from {start.isoformat()} to "
         f"{end.isoformat()} into {files.folder}:")
    for path in (files.html, files.markdown, *((files.csv,) if files.csv else ())):
        echo(f"  {path}")
    echo(f"  {files.folder / 'charts'}/ ({len(files.charts)} charts)")

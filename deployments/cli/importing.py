"""`sbu import`: a partnership's open cases brought in on the day it adopts the system, each with
its history, from a JSON file or a tracker spreadsheet's CSV (`models.importing`, `tasks.importing`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deployments.cli.app import actor, by_option, command, echo, fail, json_option, print_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.importing import ImportReport, RowOutcome

# Exit status when the file was read but some rows were refused: the others were imported (unless
# --atomic), so it is not an error of the command, and a script must still see it.
EXIT_ROWS_REFUSED = 1


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help="The cases: a JSON file or a tracker's CSV (by its extension, else by its "
                             "content).")
    parser.add_argument("--template", metavar="PATH", nargs="?", const="-",
                        help="Write the CSV template (its header row, every column) to PATH, or to stdout, "
                             "and stop.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Check every row and print what would be created, writing nothing.")
    parser.add_argument("--atomic", action="store_true",
                        help="All or nothing: if any row is refused, no case is written.")
    parser.add_argument("--format", choices=["json", "csv"],
                        help="The file's format, if its name does not say.")
    by_option(parser)
    json_option(parser, "a line per row")


@command("import", _import_arguments)
def import_cases(args: argparse.Namespace) -> None:
    """Bring in open cases with their history (referral, decision, SIN, agency information, meeting,
    outcome, the Panel, the CSPR's steps, IMRs, reports, actions), each step on its own date. Each
    row is checked as if recorded step by step, and written in one transaction (--atomic: the whole
    file in one). Nothing is sent for the history: the SBU gets one summary of the steps still open
    and late, whose escalations continue from the next working day. The same file again changes
    nothing; a changed row of a case already imported is refused. Exit status 1 if any row was
    refused. The columns of the CSV are listed in docs/importing.md.

    Example: sbu import --template tracker.csv
    Example: sbu import tracker.csv --dry-run
    Example: sbu import cases.json --atomic
    """
    from models.importing import MAX_IMPORT_BYTES, FileFormat, parse_file, template_csv

    if args.template is not None:
        if args.file is not None:
            fail("--template writes the template; give no FILE with it")
        if args.template == "-":
            sys.stdout.write(template_csv())
        else:
            try:
                Path(args.template).write_bytes(template_csv().encode())
            except OSError as error:
                fail(f"cannot write the template: {error.__class__.__name__}")
        return
    if args.file is None:
        fail("give the FILE to import (or --template)")
    if args.dry_run and args.atomic:
        fail("--dry-run writes nothing already; --atomic is for a real import")
    raw = _read(args.file, MAX_IMPORT_BYTES)
    who = actor(args.by)
    from deployments.cli.commands import _service
    from tasks.importing import import_cases as run_import

    service = _service()
    parsed = parse_file(raw, name=Path(args.file).name, now=service.clock.now(), registry=service.registry,
                        file_format=FileFormat(args.format) if args.format else None)
    report = run_import(service, parsed, file_name=Path(args.file).name, importer=who, dry_run=args.dry_run,
                        atomic=args.atomic, progress=None if args.as_json else _progress(len(parsed.cases)))
    if args.as_json:
        print_json({"file_sha256": report.sha256, "dry_run": args.dry_run, "counts": report.counts,
                    "summary_email": report.summary_queued, "rows": [row.as_json() for row in report.rows]})
    else:
        _print_report(report, dry_run=args.dry_run)
    if any(row.problem is not None for row in report.rows):
        raise SystemExit(EXIT_ROWS_REFUSED)


def _read(file: str, limit: int) -> bytes:
    # One byte past the limit, so a huge file is never read whole.
    try:
        with Path(file).open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        fail(f"no such file: {file}")
    except OSError as error:
        fail(f"cannot read {file}: {error.__class__.__name__}")
    if len(raw) > limit:
        fail(f"the file is larger than {limit // (1024 * 1024)} MiB; split it")
    return raw


def _progress(total: int) -> Callable[[int, int], None]:
    """A progress line on stderr every tenth of a long import."""
    step = max(1, total // 10)

    def show(done: int, of: int) -> None:
        if of >= 20 and (done % step == 0 or done == of):
            echo(f"checked {done} of {of} cases", err=True)

    return show


def _print_report(report: ImportReport, *, dry_run: bool) -> None:
    for row in report.rows:
        echo(_row_line(row))
    counts = ", ".join(f"{status} {count}" for status, count in report.counts.items()) or "no rows"
    echo(f"{'dry run: ' if dry_run else ''}{counts}")
    if report.summary_queued:
        echo("the SBU's summary of the import is queued; the cases' flow runs and timers are created by "
             "`sbu serve` (within seconds when it is running)", err=True)


def _row_line(row: RowOutcome) -> str:
    if row.problem is not None:
        return f"{row.problem.line()} (refused)" if row.case_ref is None else \
            f"{row.problem.line()} (refused; {row.case_ref})"
    head = f"row {row.row}: {row.status.value}" + (f" as {row.case_ref}" if row.case_ref else "")
    if row.stage is None:
        return head
    late = {f"{s.step}:{s.subject}" if s.subject else s.step: s.days_late for s in row.late}
    opened = ", ".join(f"{label} (late {late[label]} working days)" if label in late else label
                       for label in row.open_steps) or "nothing open"
    return f"{head}; path {row.path or 'awaiting the DSP decision'}; stage {row.stage}; open: {opened}"

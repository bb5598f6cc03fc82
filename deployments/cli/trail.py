"""`sbu audit` and `sbu audit verify`: read the audit trail, and check its hash chain.

Both read with SQLAlchemy Core (`tasks.store.audit`), imported inside the commands, so `sbu --help`
stays fast and neither loads the ORM or the case service.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from deployments.cli.app import command, echo, fail, json_option, print_json, subcommand

if TYPE_CHECKING:
    from tasks.store.audit import AuditEntry


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    json_option(parser, "a line")


@subcommand("verify", _verify_arguments)
def verify(args: argparse.Namespace) -> None:
    """Check the whole audit trail's hash chain: every row against its hash, every link to the row
    before, and the newest row against the chain's head. Exit code 0 when it is intact; otherwise
    2, with one line naming the first bad row and what is wrong with it (content changed, row
    missing, rows out of order, bad link). Rows are named by id, never by their content.

    The last line (or "head" in --json) is the chain's head: kept somewhere else, it shows a chain
    rewritten from the start as well.

    Example: sbu audit verify --json
    """
    from models.settings import load_settings
    from tasks.store.audit import verify_audit_chain
    from tasks.store.db import Store

    store = Store(load_settings().sqlalchemy_url).migrate()
    try:
        report = verify_audit_chain(store.engine)
    finally:
        store.dispose()
    if args.as_json:
        print_json(report.as_json())
    broken = report.first_break
    if broken is not None:
        fail(f"the audit trail is not intact: {broken.problem.value}: {broken.message}")
    if not args.as_json:
        head = report.head
        assert head is not None  # an intact chain has its head
        echo(f"the audit trail is intact: {report.rows} events; head: event {head.last_id}, "
             f"{head.last_hash}")


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--case", metavar="CASE_REF", help="Only events of this case.")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="The newest N events, listed oldest first (1 to 10000; default 50).")
    parser.add_argument("--detail", action="store_true",
                        help="Show each event's detail values, not only their names. Some are a "
                             "person's own words (the reason a date moved): keep such output in "
                             "the SBU.")
    json_option(parser)


@command("audit", _audit_arguments, subcommands=(verify,))
def audit(args: argparse.Namespace) -> None:
    """List the audit trail: who did what, when, through which interface (cli, prefect-ui, system),
    on which case, newest last.

    Shown always: the time (UTC), the case reference, who (a staff member's name, or system), the
    interface and the action; the trail holds no names of children or families. Each event's
    detail is shown by its names only (e.g. step, due, was, reason) unless --detail is given: some
    values are a person's own words (the reason given for a re-timed step or a moved anchor date,
    in step-retimed and anchor-moved), and a listing without them is safe to paste into a ticket
    or an email. With --detail, keep the output within the SBU.

    Example: sbu audit --case SR-2026-0001
    """
    from models.settings import load_settings
    from tasks.store.audit import audit_entries
    from tasks.store.db import Store

    if not 1 <= args.limit <= 10_000:
        fail("--limit must be between 1 and 10000")
    settings = load_settings()
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        entries = audit_entries(store.engine, partnership=settings.partnership, case_ref=args.case,
                                limit=args.limit)
    finally:
        store.dispose()
    if args.as_json:
        print_json({"events": [entry.as_json(values=args.detail) for entry in entries]})
        return
    if not entries:
        echo("no audit events")
        return
    for line in _table(entries, values=args.detail):
        echo(line)


def _table(entries: list[AuditEntry], *, values: bool) -> list[str]:
    rows = [("ID", "AT (UTC)", "CASE", "VIA", "ACTOR", "ACTION", "DETAIL")]
    for entry in entries:
        shown = entry.shown_detail(values=values)
        # Values as JSON: a string typed with a line break stays on its line.
        detail = (", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in shown.items())
                  if isinstance(shown, dict) else ", ".join(shown))
        rows.append((str(entry.id), f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.case_ref or "-", entry.via,
                     entry.actor, entry.action, detail or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
            + "  " + row[-1] for row in rows]

"""`sbu outbox` and `sbu mail-sink`: look into the email outbox, requeue dead letters, and run a
local SMTP sink.

Heavy modules (SQLAlchemy, aiosmtpd, Jinja2) are imported inside the commands, so `sbu --help`
stays fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployments.cli.app import actor, by_option, command, echo, fail, json_option, print_json, subcommand

if TYPE_CHECKING:
    from models.settings import Settings
    from tasks.mail.outbox import OutboxEntry
    from tasks.store.db import Store

_STATUSES = ("pending", "sent", "dead")


def _store(settings: Settings) -> Store:
    from tasks.store.db import Store

    return Store(settings.sqlalchemy_url).migrate()


def _retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outbox_id", type=int, metavar="ID", help="The dead letter's id (from `sbu outbox`).")
    by_option(parser)
    json_option(parser, "a line")


@subcommand("retry", _retry_arguments)
def retry(args: argparse.Namespace) -> None:
    """Requeue a dead letter: it gets a fresh set of attempts and goes out on the next delivery run.

    Fix the cause first (the address in the directory, the mail server settings).

    Example: sbu outbox retry 42
    """
    from models.settings import load_settings
    from tasks.mail.outbox import requeue_dead_letter

    who = actor(args.by)
    settings = load_settings()
    clock = settings.clock()
    store = _store(settings)
    try:
        with store.transaction() as session:
            entry = requeue_dead_letter(session, outbox_id=args.outbox_id, now=clock.now(), actor=who.name,
                                        via=who.via)
    finally:
        store.dispose()
    if args.as_json:
        print_json(entry.as_json())
        return
    echo(f"outbox message {entry.id} ({entry.event}"
         f"{' for ' + entry.case_ref if entry.case_ref else ''}) requeued; "
         "it goes out on the next delivery run")


def _outbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", metavar="STATUS",
                        help="Only messages in this state: pending, sent or dead (repeatable).")
    parser.add_argument("--case", metavar="CASE_REF", help="Only messages about this case.")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="At most this many, newest first (1 to 10000; default 50).")
    json_option(parser)


@command("outbox", _outbox_arguments, subcommands=(retry,))
def outbox(args: argparse.Namespace) -> None:
    """List outbox messages, newest first: id, event, case, status, attempts, recipients count,
    subject, when queued and when sent. Never bodies or addresses.

    Example: sbu outbox --status dead
    """
    from models.settings import load_settings
    from models.tables import OutboxStatus
    from tasks.mail.outbox import list_outbox, outbox_counts

    wanted = []
    for value in args.status or ():
        if value not in _STATUSES:
            fail(f"--status must be one of {', '.join(_STATUSES)}")
        wanted.append(OutboxStatus(value))
    if not 1 <= args.limit <= 10_000:
        fail("--limit must be between 1 and 10000")
    store = _store(load_settings())
    try:
        with store.reading() as session:
            entries = list_outbox(session, statuses=wanted or None, case_ref=args.case, limit=args.limit)
            counts = outbox_counts(session)
    finally:
        store.dispose()
    if args.as_json:
        payload: dict[str, Any] = {"counts": {key.value: value for key, value in counts.items()},
                                   "messages": [entry.as_json() for entry in entries]}
        print_json(payload)
        return
    echo(", ".join(f"{key.value} {value}" for key, value in counts.items()))
    if not entries:
        echo("no messages")
        return
    for line in _table(entries):
        echo(line)


def _table(entries: list[OutboxEntry]) -> list[str]:
    rows = [("ID", "STATUS", "TRIES", "TO", "EVENT", "CASE", "QUEUED (UTC)", "SENT (UTC)", "SUBJECT")]
    for entry in entries:
        rows.append((str(entry.id), entry.status.value, str(entry.attempts), str(entry.recipients),
                     entry.event, entry.case_ref or "-", f"{entry.created_at:%Y-%m-%d %H:%M}",
                     f"{entry.sent_at:%Y-%m-%d %H:%M}" if entry.sent_at else "-", entry.subject))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
            + "  " + row[-1] for row in rows]


def _sink_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Loopback address to listen on.")
    parser.add_argument("--port", type=int, metavar="N", help="Port to listen on (default: SBU_SMTP_PORT).")
    parser.add_argument("--dir", dest="directory", type=Path, metavar="DIR",
                        help="Where to store the .eml files (default: <data dir>/mail).")


@command("mail-sink", _sink_arguments)
def mail_sink(args: argparse.Namespace) -> None:
    """Run a local SMTP server on loopback that stores every message as an .eml file and prints
    one line per message (time, Message-ID, recipients, subject). Stop it with Ctrl-C.

    Example: sbu mail-sink --port 8025
    """
    from models.settings import load_settings
    from tasks.mail.sink import MailSink, ReceivedMessage

    settings = load_settings()
    target = args.directory if args.directory is not None else settings.data_dir / "mail"
    listen_port = args.port if args.port is not None else settings.smtp_port
    if not 1 <= listen_port <= 65535:
        fail("--port must be between 1 and 65535")

    def show(message: ReceivedMessage) -> None:
        echo(message.summary())
        import sys

        sys.stdout.flush()

    sink = MailSink(target, host=args.host, port=listen_port, on_message=show)
    sink.start()
    echo(f"mail sink listening on {args.host}:{listen_port}, storing .eml files in {target}; "
         "Ctrl-C to stop", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("mail sink stopped", err=True)
    finally:
        sink.stop()

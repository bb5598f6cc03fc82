"""`sbu outbox` and `sbu mail-sink`: look into the email outbox, requeue dead letters, and run a
local SMTP sink. Registered on the main app by `sbu.cli`.

Heavy modules (SQLAlchemy, aiosmtpd, Jinja2) are imported inside the commands, so `sbu --help`
stays fast.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sbu.errors import SbuError

if TYPE_CHECKING:
    from sbu.db import Store
    from sbu.mail.outbox import OutboxEntry
    from sbu.settings import Settings

outbox_app = typer.Typer(
    help="Email in the outbox: pending, sent and dead letters.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_STATUSES = ("pending", "sent", "dead")


def _store(settings: Settings) -> Store:
    from sbu.db import Store

    return Store(settings.sqlalchemy_url).migrate()


@outbox_app.callback(invoke_without_command=True)
def outbox(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option(
        "--status", metavar="STATUS",
        help="Only messages in this state: pending, sent or dead (repeatable).")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only messages about this case.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List outbox messages, newest first: id, event, case, status, attempts, recipients count,
    subject, when queued and when sent. Never bodies or addresses."""
    if ctx.invoked_subcommand is not None:
        return
    from models.tables import OutboxStatus
    from sbu.mail.outbox import list_outbox, outbox_counts
    from sbu.settings import load_settings

    wanted = []
    for value in status or ():
        if value not in _STATUSES:
            raise SbuError(f"--status must be one of {', '.join(_STATUSES)}")
        wanted.append(OutboxStatus(value))
    store = _store(load_settings())
    try:
        with store.reading() as session:
            entries = list_outbox(session, statuses=wanted or None, case_ref=case, limit=limit)
            counts = outbox_counts(session)
    finally:
        store.dispose()
    if as_json:
        payload: dict[str, Any] = {"counts": {key.value: value for key, value in counts.items()},
                                   "messages": [entry.as_json() for entry in entries]}
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(", ".join(f"{key.value} {value}" for key, value in counts.items()))
    if not entries:
        typer.echo("no messages")
        return
    for line in _table(entries):
        typer.echo(line)


def _table(entries: list[OutboxEntry]) -> list[str]:
    rows = [("ID", "STATUS", "TRIES", "TO", "EVENT", "CASE", "QUEUED (UTC)", "SENT (UTC)", "SUBJECT")]
    for entry in entries:
        rows.append((str(entry.id), entry.status.value, str(entry.attempts), str(entry.recipients),
                     entry.event, entry.case_ref or "-", f"{entry.created_at:%Y-%m-%d %H:%M}",
                     f"{entry.sent_at:%Y-%m-%d %H:%M}" if entry.sent_at else "-", entry.subject))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
            + "  " + row[-1] for row in rows]


@outbox_app.command("retry")
def retry(
    outbox_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id (from `sbu outbox`).")],
    by: Annotated[str | None, typer.Option(
        "--by", help="Who is requeueing it, for the audit trail (default: $SBU_USER or your login).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a line.")] = False,
) -> None:
    """Requeue a dead letter: it gets a fresh set of attempts and goes out on the next delivery run.

    Fix the cause first (the address in the directory, the mail server settings)."""
    from models.enums import Interface
    from sbu.clock import ScaledClock
    from sbu.mail.outbox import requeue_dead_letter
    from sbu.settings import load_settings

    actor = (by or os.environ.get("SBU_USER") or getpass.getuser()).strip()
    if not actor or len(actor) > 80 or any(ch in actor for ch in "\r\n"):
        raise SbuError("--by must be a name of 1 to 80 characters on one line")
    settings = load_settings()
    clock = ScaledClock(scale=settings.time_scale, epoch=settings.time_epoch)
    store = _store(settings)
    try:
        with store.transaction() as session:
            entry = requeue_dead_letter(session, outbox_id=outbox_id, now=clock.now(), actor=actor,
                                        via=Interface.CLI)
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(entry.as_json(), indent=2))
        return
    typer.echo(f"outbox message {entry.id} ({entry.event}"
               f"{' for ' + entry.case_ref if entry.case_ref else ''}) requeued; "
               "it goes out on the next delivery run")


def mail_sink(
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(min=1, max=65535,
                                             help="Port to listen on (default: SBU_SMTP_PORT).")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to store the .eml files (default: <data dir>/mail).")] = None,
) -> None:
    """Run a local SMTP server on loopback that stores every message as an .eml file and prints
    one line per message (time, Message-ID, recipients, subject). Stop it with Ctrl-C."""
    from sbu.mail.sink import MailSink, ReceivedMessage
    from sbu.settings import load_settings

    settings = load_settings()
    target = directory if directory is not None else settings.data_dir / "mail"
    listen_port = port if port is not None else settings.smtp_port

    def show(message: ReceivedMessage) -> None:
        typer.echo(message.summary())

    sink = MailSink(target, host=host, port=listen_port, on_message=show)
    sink.start()
    typer.echo(f"mail sink listening on {host}:{listen_port}, storing .eml files in {target}; "
               "Ctrl-C to stop", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("mail sink stopped", err=True)
    finally:
        sink.stop()

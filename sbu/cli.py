"""The `sbu` command: the SBU's front door to the pipeline.

Every command has help; every query has `--json`; every error is one line on stderr with exit code
2, never a traceback, and nothing is written when a command is refused. Heavy modules (Prefect,
SQLAlchemy) are imported inside the commands that need them, so `sbu timetable` stays instant.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from models.enums import Interface, StepId
from sbu.errors import SbuError

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import Engine

    from sbu.service import Actor, CaseService
    from sbu.settings import Settings

app = typer.Typer(
    name="sbu",
    help="Run the serious child safeguarding incident procedure: referrals, decisions, deadlines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ByOption = Annotated[str | None, typer.Option(
    "--by", help="Who is recording this, for the audit trail (default: $SBU_USER or your login).")]


def _settings() -> Settings:
    from sbu.settings import load_settings

    return load_settings()


def _service(settings: Settings | None = None) -> CaseService:
    from sbu.db import Store
    from sbu.service import CaseService

    settings = settings or _settings()
    store = Store(settings.sqlalchemy_url).migrate()
    clock = settings.clock()
    return CaseService(store=store, settings=settings, clock=clock)


def _views() -> tuple[Settings, Engine, date]:
    """What the read-only commands need: the store's engine and today's date in London, without
    the case service and its ORM (`sbu.queries` says why)."""
    from models.calendar import london_date
    from sbu.db import Store

    settings = _settings()
    store = Store(settings.sqlalchemy_url).migrate()
    return settings, store.engine, london_date(settings.clock().now())


def _actor(by: str | None) -> Actor:
    from sbu.service import Actor

    name = (by or os.environ.get("SBU_USER") or getpass.getuser()).strip()
    if not name or len(name) > 80 or any(ch in name for ch in "\r\n"):
        raise SbuError("--by must be a name of 1 to 80 characters on one line")
    return Actor(name, Interface.CLI)


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _fail(message: str) -> NoReturn:
    raise SbuError(message)


# -- timetable -------------------------------------------------------------------------------------

@app.command()
def timetable(
    referred: Annotated[str, typer.Option(help="When the SBU received the referral (ISO timestamp "
                                               "with offset, e.g. 2026-12-23T10:15:00+00:00).")],
    aware: Annotated[str, typer.Option(help="When the local authority became aware (YYYY-MM-DD).")],
    notified: Annotated[str | None, typer.Option(
        help="When the case was notified (SIN submitted; YYYY-MM-DD): adds the Rapid Review's dates.")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Print the statutory due dates for a referral, counted in England and Wales working days."""
    from models.timetable import statutory_timetable
    from sbu.parsing import parse_day, parse_moment

    referred_at = parse_moment(referred, field_name="--referred")
    aware_on = parse_day(aware, field_name="--aware")
    notified_on = parse_day(notified, field_name="--notified") if notified is not None else None
    if notified_on is not None and notified_on < aware_on:
        _fail("--notified cannot be before --aware")
    settings = _settings()
    rows = statutory_timetable(referred_at=referred_at, la_aware=aware_on, notified=notified_on,
                               clocks=settings.clocks, calendar=settings.calendar())
    if as_json:
        _print_json({"deadlines": [
            {"step": row.step.value, "due": row.due.isoformat(), "title": row.title,
             "anchor": row.anchor.value, "anchor_date": row.anchor_date.isoformat(),
             "rule": row.rule, "source": row.source}
            for row in rows]})
        return
    width = max(len(row.step.value) for row in rows)
    for row in rows:
        typer.echo(f"{row.step.value:<{width}}  {row.due:%a %d %b %Y}  {row.rule}  [{row.source}]")


# -- cases -----------------------------------------------------------------------------------------

@app.command()
def refer(
    file: Annotated[str, typer.Argument(help="The referral as a JSON file, or - to read stdin.")],
    by: ByOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a referral, store it as a case with its first deadline, and start its flow run.

    The same referring agency and external_ref again gives the same case, not a second one."""
    from pydantic import ValidationError

    from models.forms import describe_validation_error, parse_referral

    raw = _read_input(file)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        _fail(f"the referral is not valid JSON (line {error.lineno}, column {error.colno})")
    actor = _actor(by)
    service = _service()
    try:
        referral = parse_referral(data, now=service.clock.now())
    except ValidationError as error:
        _fail(f"the referral was refused: {describe_validation_error(error)}")
    outcome = service.refer(referral, actor=actor)
    run_note = _tell_prefect_of_case(service, outcome.case_ref)
    if as_json:
        _print_json({"case_ref": outcome.case_ref, "created": outcome.created})
    else:
        typer.echo(outcome.case_ref)
        if not outcome.created:
            typer.echo(f"(already referred as {outcome.case_ref}; nothing new was stored)", err=True)
    if run_note:
        typer.echo(run_note, err=True)


def _read_input(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"no such file: {file}")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read {file}: {error.__class__.__name__}")


@app.command()
def status(
    case_ref: Annotated[str, typer.Argument(help="The case reference, e.g. SR-2026-0001.")],
    as_json: JsonOption = False,
) -> None:
    """Show a case's steps: what is due when, what is done and what is late."""
    from sbu.queries import case_view

    settings, engine, today = _views()
    view = case_view(engine, partnership=settings.partnership, case_ref=case_ref, today=today)
    if as_json:
        _print_json(view.as_json())
        return
    path = view.path.value if view.path else "awaiting the DSP decision"
    typer.echo(f"{view.case_ref}  {view.status.value}  {view.category.value}  path: {path}")
    for step in view.steps:
        late = "  LATE" if step.overdue else ""
        done = f"  done {step.completed_on} by {step.completed_by}" if step.completed_on else ""
        typer.echo(f"  {step.step.value:<22} due {step.due:%a %d %b %Y}  {step.state.value}{done}{late}")


@app.command()
def cases(as_json: JsonOption = False) -> None:
    """List the partnership's cases with their next due step."""
    from sbu.queries import case_views

    settings, engine, today = _views()
    views = case_views(engine, partnership=settings.partnership, today=today)
    if as_json:
        _print_json({"cases": [
            {"case_ref": v.case_ref, "status": v.status.value,
             "path": v.path.value if v.path else None, "category": v.category.value,
             "referred_on": v.referred_on.isoformat(),
             "next_due": min((s.due for s in v.open_steps()), default=None),
             "overdue": sum(1 for s in v.steps if s.overdue)}
            for v in views]})
        return
    if not views:
        typer.echo("no cases")
    for v in views:
        next_step = min(v.open_steps(), key=lambda s: s.due, default=None)
        nxt = f"next: {next_step.step.value} due {next_step.due}" if next_step else "nothing open"
        late = sum(1 for s in v.steps if s.overdue)
        typer.echo(f"{v.case_ref}  {v.status.value:<17} {v.category.value:<12} {nxt}"
                   + (f"  ({late} late)" if late else ""))


# -- recording ------------------------------------------------------------------------------------

@app.command()
def decide(
    case_ref: Annotated[str, typer.Argument(help="The case reference.")],
    sin: Annotated[bool, typer.Option("--sin/--no-sin", help="Submit a Serious Incident Notification.")],
    rapid_review: Annotated[bool, typer.Option("--rapid-review/--no-rapid-review",
                                               help="Hold a Rapid Review.")],
    rationale: Annotated[str, typer.Option(help="Why the DSPs decided this (kept in the case store "
                                                "only, never sent to Prefect or by email).")],
    dsp: Annotated[list[str], typer.Option(help="A DSP present; give --dsp three times.")],
    on: Annotated[str | None, typer.Option(help="The date of the decision (default: today).")] = None,
    by: ByOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the three DSPs' decision on a referral, then set its flow run moving."""
    from pydantic import ValidationError

    from models.calendar import london_date
    from models.forms import DspDecisionForm, describe_validation_error
    from sbu.parsing import parse_day

    actor = _actor(by)
    service = _service()
    decided_on = parse_day(on, field_name="--on") if on else london_date(service.clock.now())
    try:
        form = DspDecisionForm(sin=sin, rapid_review=rapid_review, rationale=rationale,
                               dsps_present=dsp, decided_on=decided_on)
    except ValidationError as error:
        _fail(f"the decision was refused: {describe_validation_error(error)}")
    outcome = service.decide(case_ref, form, actor=actor)
    note = _resume_case(service, case_ref, step=StepId.DSP_DECISION, actor=actor.name)
    _report_change(outcome, note, as_json)


@app.command()
def record(
    case_ref: Annotated[str, typer.Argument(help="The case reference.")],
    step: Annotated[StepId, typer.Argument(help="The step done, e.g. sin-submission.",
                                           case_sensitive=False)],
    on: Annotated[str | None, typer.Option(help="The date it was done (default: today).")] = None,
    national_ref: Annotated[str | None, typer.Option(
        "--national-ref", help="sin-submission: the national notification's reference.")] = None,
    agency: Annotated[str | None, typer.Option(
        help="rr-agency-responses: the agency whose information arrived.")] = None,
    reference: Annotated[str | None, typer.Option(help="Any other step: a reference to file.")] = None,
    by: ByOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a step as done (sin-submission, partners-informed, rr-agency-responses, rr-meeting, ...)."""
    from pydantic import ValidationError

    from models.calendar import london_date
    from models.forms import STEP_FORMS, describe_validation_error
    from sbu.parsing import parse_day

    if step is StepId.DSP_DECISION:
        _fail("record the DSP decision with `sbu decide`")
    actor = _actor(by)
    service = _service()
    completed_on = parse_day(on, field_name="--on") if on else london_date(service.clock.now())
    form_type = STEP_FORMS[step]
    fields: dict[str, Any] = {"completed_on": completed_on}
    for name, value in (("national_ref", national_ref), ("agency", agency), ("reference", reference)):
        if value is None:
            continue
        if name not in form_type.model_fields:
            _fail(f"--{name.replace('_', '-')} does not apply to {step.value}")
        fields[name] = value
    try:
        form = form_type.model_validate(fields)
    except ValidationError as error:
        _fail(f"the record was refused: {describe_validation_error(error)}")
    outcome = service.record(case_ref, step, form, actor=actor)
    note = _resume_case(service, case_ref, step=step, actor=actor.name)
    _report_change(outcome, note, as_json)


def _report_change(outcome: Any, note: str | None, as_json: bool) -> None:
    if as_json:
        _print_json({"case_ref": outcome.case_ref, "already_recorded": outcome.already_recorded,
                     "opened": [s.value for s in outcome.opened],
                     "completed": [s.value for s in outcome.completed], "closed": outcome.closed,
                     "rapid_review_started": outcome.rapid_review_started, "prefect": note})
        return
    if outcome.already_recorded:
        typer.echo(f"{outcome.case_ref}: already recorded; nothing changed")
    else:
        parts = [f"recorded {', '.join(s.value for s in outcome.completed) or 'the response'}"]
        if outcome.opened:
            parts.append(f"opened {', '.join(s.value for s in outcome.opened)}")
        if outcome.closed:
            parts.append("case closed")
        typer.echo(f"{outcome.case_ref}: {'; '.join(parts)}")
    if note:
        typer.echo(note, err=True)


def _tell_prefect_of_case(service: CaseService, case_ref: str) -> str | None:
    from sbu.prefect_bridge import create_case_run

    return create_case_run(service, case_ref)


def _resume_case(service: CaseService, case_ref: str, *, step: StepId, actor: str) -> str | None:
    from sbu.prefect_bridge import wake_case

    return wake_case(service, case_ref, step=step, actor=actor)


# -- the whole system ------------------------------------------------------------------------------

@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port of the local Prefect server and UI.")] = None,
) -> None:
    """Run the whole system in the foreground: a local Prefect server (unless PREFECT_API_URL points
    at one) and every deployment. Ctrl-C stops it; starting again carries on where it stopped."""
    from deployments.serve import serve_forever

    serve_forever(_settings(), port=port)


@app.command()
def demo(
    scale: Annotated[float, typer.Option(help="How many times faster than real time case time runs.")]
    = 8640.0,
) -> None:
    """Run the whole system with a sample case, a mail sink and a fast clock, then print a summary."""
    from deployments.demo import run_demo

    run_demo(scale=scale)


def _register_mail_commands() -> None:
    # sbu.cli_mail imports nothing heavy at module level, so `sbu --help` stays fast.
    from sbu.cli_mail import mail_sink, outbox_app

    app.add_typer(outbox_app, name="outbox")
    app.command("mail-sink")(mail_sink)


_register_mail_commands()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: turn every known failure into one line on stderr and exit code 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="sbu", standalone_mode=False)
    except SbuError as error:
        return _error_line(str(error))
    except typer.Exit as error:
        return int(error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _error_line("interrupted")
    except Exception as error:
        # Typer carries its own copy of click, so usage errors are recognised by shape, not class.
        if type(error).__name__ == "NoArgsIsHelpError":
            context = getattr(error, "ctx", None)
            sys.stderr.write(context.get_help() + "\n" if context else "")
            return 2
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):
            return _error_line(error.format_message())
        if os.environ.get("SBU_DEBUG"):
            raise
        return _error_line(f"internal error ({error.__class__.__name__}); "
                           "rerun with SBU_DEBUG=1 for details")
    return int(result) if isinstance(result, int) else 0


def _error_line(message: str) -> int:
    text = " ".join(message.split())
    sys.stderr.write(f"sbu: error: {text}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())

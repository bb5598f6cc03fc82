"""The case commands of `sbu`: the timetable, referrals, queries, recording and re-timing steps,
and running the whole system. Every change goes to the case store first and then sets Prefect's
runs moving (`tasks.prefect_bridge`); a Prefect that cannot be told is a note, never an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployments.cli.app import actor, by_option, command, echo, fail, json_option, print_json
from models.enums import StepId

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import Engine

    from models.settings import Settings
    from tasks.service import CaseService, ChangeOutcome


def _settings() -> Settings:
    from models.settings import load_settings

    return load_settings()


def _service(settings: Settings | None = None) -> CaseService:
    from tasks.service import CaseService
    from tasks.store.db import Store

    settings = settings or _settings()
    store = Store(settings.sqlalchemy_url).migrate()
    return CaseService(store=store, settings=settings, clock=settings.clock())


def _views() -> tuple[Settings, Engine, date]:
    """What the read-only commands need: the store's engine and today's date in London, without
    the case service, the procedure or the ORM (`tasks.store.queries` says why)."""
    from models.calendar import london_date
    from tasks.store.db import Store

    settings = _settings()
    store = Store(settings.sqlalchemy_url).migrate()
    return settings, store.engine, london_date(settings.clock().now())


# -- timetable ----------------------------------------------------------------------------------------

def _timetable_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--referred", required=True, metavar="TIMESTAMP",
                        help="When the SBU received the referral (ISO timestamp with offset, "
                             "e.g. 2026-12-23T10:15:00+00:00).")
    parser.add_argument("--aware", required=True, metavar="DATE",
                        help="When the local authority became aware (YYYY-MM-DD).")
    parser.add_argument("--notified", metavar="DATE",
                        help="When the case was notified (SIN submitted; YYYY-MM-DD): adds the Rapid "
                             "Review's dates.")
    json_option(parser)


@command("timetable", _timetable_arguments)
def timetable(args: argparse.Namespace) -> None:
    """Print the statutory due dates for a referral, counted in England and Wales working days.

    Example: sbu timetable --referred 2026-12-23T10:15:00+00:00 --aware 2026-12-22 --notified 2026-12-30
    """
    from deployments.cli.parsing import parse_day, parse_moment
    from models.timetable import statutory_timetable
    from tasks.holiday_cache import calendar_for

    referred_at = parse_moment(args.referred, field_name="--referred")
    aware_on = parse_day(args.aware, field_name="--aware")
    notified_on = parse_day(args.notified, field_name="--notified") if args.notified is not None else None
    if notified_on is not None and notified_on < aware_on:
        fail("--notified cannot be before --aware")
    settings = _settings()
    rows = statutory_timetable(referred_at=referred_at, la_aware=aware_on, notified=notified_on,
                               clocks=settings.clocks, calendar=calendar_for(settings))
    if args.as_json:
        print_json({"deadlines": [
            {"step": row.step, "due": row.due.isoformat(), "title": row.title,
             "anchor": row.anchor.value, "anchor_date": row.anchor_date.isoformat(),
             "rule": row.rule, "source": row.source}
            for row in rows]})
        return
    width = max(len(row.step) for row in rows)
    for row in rows:
        echo(f"{row.step:<{width}}  {row.due:%a %d %b %Y}  {row.rule}  [{row.source}]")


# -- cases ------------------------------------------------------------------------------------------------

def _refer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="The referral as a JSON file, or - to read stdin.")
    by_option(parser)
    json_option(parser, "the case reference")


@command("refer", _refer_arguments)
def refer(args: argparse.Namespace) -> None:
    """Validate a referral, store it as a case with its first deadline, and start its flow run.

    The same referring agency and external_ref again gives the same case, not a second one.

    Example: sbu refer referral.json
    """
    from pydantic import ValidationError

    from models.errors import describe_validation_error
    from models.forms import parse_referral

    raw = _read_input(args.file)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        fail(f"the referral is not valid JSON (line {error.lineno}, column {error.colno})")
    who = actor(args.by)
    service = _service()
    try:
        referral = parse_referral(data, now=service.clock.now())
    except ValidationError as error:
        fail(f"the referral was refused: {describe_validation_error(error)}")
    outcome = service.refer(referral, actor=who)
    run_note = _tell_prefect_of_case(service, outcome.case_ref)
    if args.as_json:
        print_json({"case_ref": outcome.case_ref, "created": outcome.created})
    else:
        echo(outcome.case_ref)
        if not outcome.created:
            echo(f"(already referred as {outcome.case_ref}; nothing new was stored)", err=True)
    if run_note:
        echo(run_note, err=True)


def _read_input(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"no such file: {file}")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {file}: {error.__class__.__name__}")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference, e.g. SR-2026-0001.")
    json_option(parser)


@command("status", _status_arguments)
def status(args: argparse.Namespace) -> None:
    """Show a case's steps: what is due when, what is done and what is late.

    Example: sbu status SR-2026-0001
    """
    from tasks.store.queries import case_view

    settings, engine, today = _views()
    view = case_view(engine, partnership=settings.partnership, case_ref=args.case_ref, today=today)
    if args.as_json:
        print_json(view.as_json())
        return
    path = view.path.value if view.path else "awaiting the DSP decision"
    echo(f"{view.case_ref}  {view.status.value}  {view.category.value}  path: {path}")
    for step in view.steps:
        late = "  LATE" if step.overdue else ""
        done = f"  done {step.completed_on} by {step.completed_by}" if step.completed_on else ""
        echo(f"  {step.label:<22} due {step.due:%a %d %b %Y}  {step.state.value}{done}{late}")


@command("cases", json_option)
def cases(args: argparse.Namespace) -> None:
    """List the partnership's cases with their next due step.

    Example: sbu cases --json
    """
    from tasks.store.queries import case_views

    settings, engine, today = _views()
    views = case_views(engine, partnership=settings.partnership, today=today)
    if args.as_json:
        print_json({"cases": [
            {"case_ref": v.case_ref, "status": v.status.value,
             "path": v.path.value if v.path else None, "category": v.category.value,
             "referred_on": v.referred_on.isoformat(),
             "next_due": min((s.due for s in v.open_steps()), default=None),
             "overdue": sum(1 for s in v.steps if s.overdue)}
            for v in views]})
        return
    if not views:
        echo("no cases")
    for v in views:
        next_step = min(v.open_steps(), key=lambda s: s.due, default=None)
        nxt = f"next: {next_step.label} due {next_step.due}" if next_step else "nothing open"
        late = sum(1 for s in v.steps if s.overdue)
        echo(f"{v.case_ref}  {v.status.value:<17} {v.category.value:<12} {nxt}"
             + (f"  ({late} late)" if late else ""))


# -- recording ------------------------------------------------------------------------------------------

def _flag_pair(parser: argparse.ArgumentParser, name: str, dest: str, help_yes: str, help_no: str) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help_yes)
    group.add_argument(f"--no-{name}", dest=dest, action="store_false", help=help_no)


def _decide_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    _flag_pair(parser, "sin", "sin", "Submit a Serious Incident Notification.", "Do not submit a SIN.")
    _flag_pair(parser, "rapid-review", "rapid_review", "Hold a Rapid Review.", "Hold no Rapid Review.")
    parser.add_argument("--rationale", required=True, metavar="TEXT",
                        help="Why the DSPs decided this (kept in the case store only, never sent to "
                             "Prefect or by email).")
    parser.add_argument("--dsp", action="append", required=True, metavar="NAME",
                        help="A DSP present; give --dsp three times.")
    parser.add_argument("--on", metavar="DATE", help="The date of the decision (default: today).")
    by_option(parser)
    json_option(parser, "a line")


@command("decide", _decide_arguments)
def decide(args: argparse.Namespace) -> None:
    """Record the three DSPs' decision on a referral, then set its flow run moving.

    Example: sbu decide SR-2026-0001 --sin --rapid-review --rationale "Abuse suspected; criteria met."
    --dsp "Director of Children's Services" --dsp "Director of Nursing" --dsp "Chief Superintendent"
    """
    from pydantic import ValidationError

    from deployments.cli.parsing import parse_day
    from models.calendar import london_date
    from models.errors import describe_validation_error
    from models.forms import DspDecisionForm

    who = actor(args.by)
    service = _service()
    decided_on = parse_day(args.on, field_name="--on") if args.on else london_date(service.clock.now())
    try:
        form = DspDecisionForm(sin=args.sin, rapid_review=args.rapid_review, rationale=args.rationale,
                               dsps_present=args.dsp, decided_on=decided_on)
    except ValidationError as error:
        fail(f"the decision was refused: {describe_validation_error(error)}")
    outcome = service.decide(args.case_ref, form, actor=who)
    note = _resume_case(service, args.case_ref, step=StepId.DSP_DECISION)
    _report_change(outcome, note, args.as_json)


# The options `sbu record` offers, each a field some step's form may have.
_RECORD_FIELDS = (("national_ref", "--national-ref",
                   "sin-submission: the national notification's reference."),
                  ("agency", "--agency", "rr-agency-responses (or any step with one item per agency): "
                                         "the agency."),
                  ("reference", "--reference", "Any other step: a reference to file."))


def _record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("step", metavar="STEP", help="The step done, e.g. sin-submission.")
    parser.add_argument("--on", metavar="DATE", help="The date it was done (default: today).")
    for dest, flag, text in _RECORD_FIELDS:
        parser.add_argument(flag, dest=dest, metavar="VALUE", help=text)
    by_option(parser)
    json_option(parser, "a line")


@command("record", _record_arguments)
def record(args: argparse.Namespace) -> None:
    """Record a step as done (sin-submission, partners-informed, rr-agency-responses, rr-meeting, ...).

    Example: sbu record SR-2026-0001 sin-submission --national-ref CSIN-2026-0042 --on 2026-12-29
    """
    from pydantic import ValidationError

    from deployments.cli.parsing import parse_day
    from models.calendar import london_date
    from models.errors import describe_validation_error

    step = args.step.strip().lower()
    if step == StepId.DSP_DECISION:
        fail("record the DSP decision with `sbu decide`")
    who = actor(args.by)
    service = _service()
    spec = service.registry.item(step)
    if spec is None:
        fail(f"there is no such step; the steps are {', '.join(service.registry.steps)}")
    fields: dict[str, Any] = {spec.date_field: parse_day(args.on, field_name="--on") if args.on
                              else london_date(service.clock.now())}
    for dest, flag, _text in _RECORD_FIELDS:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest not in spec.form.model_fields:
            fail(f"{flag} does not apply to {step}")
        fields[dest] = value
    try:
        form = spec.form.model_validate(fields)
    except ValidationError as error:
        fail(f"the record was refused: {describe_validation_error(error)}")
    outcome = service.record(args.case_ref, step, form, actor=who)
    note = _resume_case(service, args.case_ref, step=step)
    _report_change(outcome, note, args.as_json)


def _retime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("what", metavar="STEP_OR_ANCHOR",
                        help="An open step (e.g. rr-meeting) for a new due date, or an anchor date to "
                             "move (e.g. planned-publication), whose open steps all follow.")
    parser.add_argument("--to", required=True, metavar="DATE", help="The new date (YYYY-MM-DD).")
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="Why the date moves (kept in the case store's audit trail only, never "
                             "sent to Prefect or by email).")
    parser.add_argument("--subject", metavar="NAME",
                        help="For a step with one item per agency or action: which one.")
    by_option(parser)
    json_option(parser, "a line")


@command("retime", _retime_arguments)
def retime(args: argparse.Namespace) -> None:
    """Give an open step a new due date, or move an anchor date, with the reason; the reminders,
    overdue alerts and escalations move with it.

    Example: sbu retime SR-2026-0001 rr-meeting --to 2027-01-08 --reason "The Panel chair is away"
    """
    from pydantic import ValidationError

    from deployments.cli.parsing import parse_day
    from models.enums import Anchor
    from models.errors import describe_validation_error
    from models.forms import RetimeForm

    what = args.what.strip().lower()
    who = actor(args.by)
    try:
        form = RetimeForm(due=parse_day(args.to, field_name="--to"), reason=args.reason)
    except ValidationError as error:
        fail(f"the new date was refused: {describe_validation_error(error)}")
    service = _service()
    anchors = {anchor.value: anchor for anchor in Anchor}
    if what in anchors:
        if args.subject is not None:
            fail("--subject applies to a step, not to an anchor date")
        outcome = service.move_anchor(args.case_ref, anchors[what], form, actor=who)
    elif service.registry.item(what) is not None:
        outcome = service.retime(args.case_ref, what, form, subject=args.subject or "", actor=who)
    else:
        fail(f"that is neither a step nor an anchor date; the anchors are {', '.join(anchors)}")
    note = _resume_case(service, args.case_ref, step=None)
    _report_change(outcome, note, args.as_json, retiming=True)


def _report_change(outcome: ChangeOutcome, note: str | None, as_json: bool, *,
                   retiming: bool = False) -> None:
    if as_json:
        print_json({**outcome.as_json(), "prefect": note})
        return
    if outcome.already_recorded:
        echo(f"{outcome.case_ref}: already recorded; nothing changed")
    else:
        if retiming:
            parts = [f"re-timed {', '.join(outcome.retimed)}" if outcome.retimed
                     else "the date is recorded; no open step follows it"]
        else:
            parts = [f"recorded {', '.join(outcome.completed) or 'the response'}"]
        if outcome.opened:
            parts.append(f"opened {', '.join(outcome.opened)}")
        if outcome.started:
            parts.append(f"started {', '.join(outcome.started)}")
        if outcome.closed:
            parts.append("case closed")
        echo(f"{outcome.case_ref}: {'; '.join(parts)}")
    if note:
        echo(note, err=True)


def _tell_prefect_of_case(service: CaseService, case_ref: str) -> str | None:
    from tasks.prefect_bridge import create_case_run

    return create_case_run(service, case_ref)


def _resume_case(service: CaseService, case_ref: str, *, step: str | None) -> str | None:
    from tasks.prefect_bridge import wake_case

    return wake_case(service, case_ref, step=step)


# -- the whole system ------------------------------------------------------------------------------------

def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, metavar="N", help="Port of the local Prefect server and UI.")


@command("serve", _serve_arguments)
def serve(args: argparse.Namespace) -> None:
    """Run the whole system in the foreground: a local Prefect server (unless PREFECT_API_URL points
    at one) and every deployment. Ctrl-C stops it; starting again carries on where it stopped.

    Example: sbu serve --port 4200
    """
    from deployments.serve import serve_forever

    serve_forever(_settings(), port=args.port)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, default=8640.0, metavar="X",
                        help="How many times faster than real time case time runs (default 8640).")


@command("demo", _demo_arguments)
def demo(args: argparse.Namespace) -> None:
    """Run the whole system with a sample case, a mail sink and a fast clock, then print a summary.

    Example: sbu demo
    """
    from deployments.demo import run_demo

    run_demo(scale=args.scale)

"""The case commands of `sbu`: the timetable, referrals, queries, recording and re-timing steps,
and running the whole system. Every change goes to the case store first and then sets Prefect's
runs moving (`tasks.prefect`); a Prefect that cannot be told is a note, never an error.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deployments.cli.app import actor, by_option, command, echo, fail, json_option, print_json

if TYPE_CHECKING:
    from datetime import date

    from pydantic import BaseModel
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
    parser.add_argument("--aware", metavar="DATE",
                        help="When the local authority became aware (YYYY-MM-DD); needed unless "
                             "--near-miss.")
    parser.add_argument("--notified", metavar="DATE",
                        help="When the case was notified (SIN submitted; for a near miss, the DSPs' "
                             "decision; YYYY-MM-DD): adds the Rapid Review's dates.")
    parser.add_argument("--near-miss", action="store_true",
                        help="A near miss: no SIN, and the Rapid Review's longer clocks.")
    parser.add_argument("--commissioned", metavar="DATE",
                        help="When a CSPR was commissioned (YYYY-MM-DD): adds every step counted from "
                             "it, its publication target included.")
    parser.add_argument("--planned-publication", metavar="DATE",
                        help="The CSPR's planned publication date (YYYY-MM-DD): adds the report to the "
                             "Panel and the Secretary of State.")
    json_option(parser)


@command("timetable", _timetable_arguments)
def timetable(args: argparse.Namespace) -> None:
    """Print the statutory due dates for a referral, and for its reviews, counted in England and
    Wales working days: every step of every process counted from a date given.

    Example: sbu timetable --referred 2026-12-23T10:15:00+00:00 --aware 2026-12-22 --notified 2026-12-30
    Example: sbu timetable --referred 2027-01-11T09:00:00+00:00 --near-miss --notified 2027-01-12
    Example: sbu timetable --referred 2027-01-11T09:00:00+00:00 --aware 2027-01-08 \\
             --commissioned 2027-02-01 --planned-publication 2027-07-30
    """
    from deployments.cli.parsing import parse_day, parse_moment
    from models.processes import build_registry
    from models.timetable import known_anchors
    from tasks.holiday_cache import calendar_for

    referred_at = parse_moment(args.referred, field_name="--referred")
    days = {name: parse_day(value, field_name=f"--{name.replace('_', '-')}") if value is not None else None
            for name, value in (("aware", args.aware), ("notified", args.notified),
                                ("commissioned", args.commissioned),
                                ("planned_publication", args.planned_publication))}
    if days["aware"] is None and not args.near_miss:
        fail("--aware is required (unless --near-miss)")
    if days["aware"] is not None and days["notified"] is not None and days["notified"] < days["aware"]:
        fail("--notified cannot be before --aware")
    settings = _settings()
    registry = build_registry(settings.process_modules)
    try:
        clocks = registry.check_clocks(settings.clocks)
    except ValueError as error:
        fail(f"settings: {error}")
    anchors = known_anchors(referred_at=referred_at, la_aware=days["aware"], notified=days["notified"],
                            near_miss=args.near_miss, commissioned=days["commissioned"],
                            planned_publication=days["planned_publication"])
    rows = registry.timetable(anchors, clocks=clocks, calendar=calendar_for(settings),
                              near_miss=args.near_miss)
    if args.as_json:
        print_json({"near_miss": args.near_miss, "deadlines": [
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
    if len(raw) > MAX_REFERRAL_CHARS:
        fail(f"the referral is larger than {MAX_REFERRAL_CHARS // 1024} KiB; a referral is a few lines "
             "of JSON")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        fail(f"the referral is not valid JSON (line {error.lineno}, column {error.colno})")
    except RecursionError:
        fail("the referral is not valid JSON (nested too deeply)")
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


# A referral is well under 2 KiB; anything near this is not one, and is refused before it is parsed.
MAX_REFERRAL_CHARS = 64 * 1024


def _read_input(file: str) -> str:
    # Read one character past the limit, so a huge file or stream is never read whole.
    if file == "-":
        return sys.stdin.read(MAX_REFERRAL_CHARS + 1)
    path = Path(file)
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.read(MAX_REFERRAL_CHARS + 1)
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
    from models.processes import build_registry
    from tasks.store.queries import case_view

    settings, engine, today = _views()
    view = case_view(engine, partnership=settings.partnership, case_ref=args.case_ref, today=today)
    stage = build_registry(settings.process_modules).stage_of(view)
    if args.as_json:
        print_json(view.as_json(stage=stage))
        return
    path = view.path.value if view.path else "awaiting the DSP decision"
    review = f"  review: {view.review.value}" if view.review else ""
    echo(f"{view.case_ref}  {view.status.value}  {view.category.value}  stage: {stage.value}  "
         f"path: {path}{review}")
    if view.meeting is not None and view.state_of("rr-meeting") is not None:
        echo(f"  meeting: {view.meeting.starts_at:%a %d %b %Y %H:%M} UTC at {view.meeting.place} "
             f"(invitation version {view.meeting.sequence})")
    for step in view.steps:
        late = "  LATE" if step.overdue else ""
        done = f"  done {step.completed_on} by {step.completed_by}" if step.completed_on else ""
        missing = step.details.get("missing_sections") if step.is_open else None
        note = f"  (received; sections missing: {', '.join(missing)})" if missing else ""
        echo(f"  {step.label:<30} due {step.due:%a %d %b %Y}  {step.state.value}{done}{note}{late}")


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
    # Written out rather than derived from the form (as `sbu record`'s are): building every
    # command's options must not import the forms, or `sbu timetable` would pay for them.
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    _flag_pair(parser, "sin", "sin", "Submit a Serious Incident Notification.", "Do not submit a SIN.")
    _flag_pair(parser, "rapid-review", "rapid_review", "Hold a Rapid Review.", "Hold no Rapid Review.")
    parser.add_argument("--rationale", required=True, metavar="TEXT",
                        help="Why the DSPs decided this (kept in the case store only, never sent to "
                             "Prefect or by email).")
    for role, title in (("la", "Director of Children's Services (local authority)"),
                        ("health", "Director of Nursing (ICB)"), ("police", "Chief Superintendent (police)")):
        parser.add_argument(f"--dsp-{role}", dest=f"dsp_{role}", required=True, metavar="NAME",
                            help=f"Who signed as the {title}.")
    parser.add_argument("--deputy", action="append", choices=["la", "health", "police"], metavar="ROLE",
                        help="A DSP role signed by a deputy acting for the role-holder (la, health or "
                             "police); give it once for each.")
    parser.add_argument("--on", dest="decided_on", metavar="DATE",
                        help="The date of the decision (default: today).")
    by_option(parser)
    json_option(parser, "a line")


@command("decide", _decide_arguments)
def decide(args: argparse.Namespace) -> None:
    """Record the three DSPs' decision on a referral, signed by each DSP role, then set its flow run
    moving. A deputy acting for a role-holder signs as such (--deputy ROLE).

    Example: sbu decide SR-2026-0001 --sin --rapid-review --rationale "Abuse suspected; criteria met."
    --dsp-la "Dana Lee" --dsp-health "Sam Patel" --dsp-police "Alex Morgan" --deputy police
    """
    from models.processes.case import DSP_DECISION

    _record_form(args, DSP_DECISION.step, DSP_DECISION.form, date_field=DSP_DECISION.date_field)


def _record_form(args: argparse.Namespace, kind: str, form: type[BaseModel], *, date_field: str | None,
                 act: bool = False) -> None:
    """Validate the options as `form`, record it (a step, or an act), and set the case's runs moving."""
    from pydantic import ValidationError

    from deployments.cli.forms import form_values
    from models.calendar import london_date
    from models.errors import describe_validation_error

    who = actor(args.by)
    service = _service()
    values = form_values(args, form, date_field=date_field, today=london_date(service.clock.now()))
    try:
        validated = form.model_validate(values)
    except ValidationError as error:
        fail(f"the record was refused: {describe_validation_error(error)}")
    if act:
        outcome = service.act(args.case_ref, kind, validated, actor=who)
    else:
        outcome = service.record(args.case_ref, kind, validated, actor=who)
    note = _resume_case(service, args.case_ref, step=kind)
    _report_change(outcome, note, args.as_json)


def _record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("step", metavar="STEP",
                        help="The step done (e.g. sin-submission, rr-outcome, cspr-imr), or an act "
                             "(e.g. rr-meeting-moved, action-added).")
    parser.add_argument("options", nargs=argparse.REMAINDER, metavar="...",
                        help="The step's own options: see `sbu record CASE STEP --help`.")


def _recordable() -> str:
    """The steps and acts `sbu record` takes, from the registry: its help's list."""
    import textwrap

    from models.processes import build_registry
    from models.processes.case import DSP_DECISION

    registry = build_registry(_settings().process_modules)
    steps = [step for step in registry.steps if step != DSP_DECISION.step]
    lines = [f"Steps: {', '.join(steps)}.", f"Acts: {', '.join(registry.acts)}."]
    return "\n".join(wrapped for line in lines
                     for wrapped in textwrap.wrap(line, width=100, break_on_hyphens=False))


@command("record", _record_arguments, more_help=_recordable)
def record(args: argparse.Namespace) -> None:
    """Record a step as done, or an act (a meeting moved, an action added), with its form's options.
    Each step has options of its own: `sbu record CASE STEP --help` lists them.

    Example: sbu record SR-2026-0001 sin-submission --national-ref CSIN-2026-0042 --on 2026-12-29
    Example: sbu record SR-2026-0001 cspr-imr --agency health --missing-section chronology
    """
    from deployments.cli.app import make_parser
    from deployments.cli.forms import add_form_options, form_example
    from models.processes import build_registry
    from models.processes.case import DSP_DECISION

    kind = args.step.strip().lower()
    if kind == DSP_DECISION.step:
        fail("record the DSP decision with `sbu decide`")
    registry = build_registry(_settings().process_modules)
    choice = registry.choice(kind)
    if choice is None:
        fail(f"there is no such step or act; the steps are {', '.join(registry.steps)} and the acts "
             f"{', '.join(registry.acts)}")
    form, date_field, title = choice.form, choice.date_field, choice.title
    parser = make_parser(f"sbu record CASE_REF {kind}", f"{title}. {inspect.cleandoc(form.__doc__ or '')}",
                         epilog=form_example(kind, form, date_field=date_field))
    add_form_options(parser, form, date_field=date_field)
    by_option(parser)
    json_option(parser, "a line")
    options = parser.parse_args(args.options)
    options.case_ref = args.case_ref
    _record_form(options, kind, form, date_field=date_field, act=registry.act(kind) is not None)


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
    from models.errors import describe_validation_error
    from models.forms import RetimeForm

    what = args.what.strip().lower()
    who = actor(args.by)
    try:
        form = RetimeForm(due=parse_day(args.to, field_name="--to"), reason=args.reason)
    except ValidationError as error:
        fail(f"the new date was refused: {describe_validation_error(error)}")
    service = _service()
    # The procedure's anchors and those the registered processes declare.
    anchor = service.registry.anchor(what)
    if anchor is not None:
        if args.subject is not None:
            fail("--subject applies to a step, not to an anchor date")
        outcome = service.move_anchor(args.case_ref, anchor.anchor, form, actor=who)
    elif service.registry.item(what) is not None:
        outcome = service.retime(args.case_ref, what, form, subject=args.subject or "", actor=who)
    else:
        anchors = ", ".join(spec.anchor for spec in service.registry.anchors)
        fail(f"that is neither a step nor an anchor date; the anchors are {anchors}")
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
    from tasks.prefect.runs import create_case_run

    return create_case_run(service, case_ref)


def _resume_case(service: CaseService, case_ref: str, *, step: str | None) -> str | None:
    from tasks.prefect.resume import wake_case

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


def _gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="ADDRESS", help="Address to listen on (default $SBU_GATEWAY_HOST).")
    parser.add_argument("--port", type=int, metavar="N", help="Port to listen on "
                        "(default $SBU_GATEWAY_PORT).")
    parser.add_argument("--desk", metavar="URL",
                        help="Also front the officers' desk (`sbu web`) at this address, under /desk "
                             "(default $SBU_GATEWAY_DESK_URL; e.g. http://127.0.0.1:4400).")


@command("gateway", _gateway_arguments)
def gateway(args: argparse.Namespace) -> None:
    """Per-user sign-in for the dashboard: stand between the signing-in reverse proxy and Prefect,
    believe the proxy's user header only from the proxy, and record that user as the author of
    every form answered on the dashboard (see the README, "Access"). With --desk, it fronts the
    officers' desk too: everything under /desk goes to `sbu web`, which records the signed-in user.

    Example: sbu gateway --port 4300   (with SBU_GATEWAY_KEY set in the environment)
    Example: sbu gateway --port 4300 --desk http://127.0.0.1:4400
    """
    from deployments.gateway import run_gateway

    desk = args.desk
    if desk is not None and not re.fullmatch(r"https?://[^\s/]+(:[0-9]+)?/?", desk):
        fail("--desk must be the desk's address, e.g. http://127.0.0.1:4400")
    run_gateway(_settings(), host=args.host, port=args.port, desk=desk)


def _web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="ADDRESS",
                        help="Address to listen on (default $SBU_DESK_HOST, 127.0.0.1).")
    parser.add_argument("--port", type=int, metavar="N",
                        help="Port to listen on (default $SBU_DESK_PORT, 4400).")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="Processes answering pages (default 1; more use more cores).")


@command("web", _web_arguments)
def web(args: argparse.Namespace) -> None:
    """Run the officers' desk in the foreground: a web page for each case (its timeline, meeting,
    action plan, audit trail and runs), a form for each step and act that keeps what was typed when
    it is refused, the referral, what is due, and the reports. Behind `sbu gateway --desk` the
    signed-in user records; without it the desk asks each person's name. Ctrl-C stops it.

    Example: sbu web --port 4400   (then open http://127.0.0.1:4400/desk/)
    """
    from deployments.web.app import run_desk

    if args.port is not None and not 1 <= args.port <= 65535:
        fail("--port must be between 1 and 65535")
    if not 1 <= args.workers <= 32:
        fail("--workers must be between 1 and 32")
    run_desk(_settings(), host=args.host, port=args.port, workers=args.workers)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=float, default=3600.0, metavar="X",
                        help="How many times faster than real time case time runs (default 3600: an "
                             "hour a second).")
    parser.add_argument("--serve", action="store_true",
                        help="Keep the dashboard up with the last demo's data (running the demo first if "
                             "there is none) until Ctrl-C.")
    parser.add_argument("--port", type=int, metavar="N", help="Port of the dashboard (default 4200 if free).")


@command("demo", _demo_arguments)
def demo(args: argparse.Namespace) -> None:
    """Run the whole system with three sample cases (a notified case to its CSPR, a near miss, a
    looked-after child's death with one step left late), a mail sink and a fast clock; print
    progress, write the report, stop. With --serve, keep the dashboard up with the demo's data.

    Example: sbu demo
    Example: sbu demo --serve --port 4200
    """
    from deployments.demo import run_demo, serve_demo

    if args.serve:
        serve_demo(port=args.port)
    else:
        run_demo(scale=args.scale, port=args.port)

"""`sbu meeting` and `sbu action`: the Rapid Review meeting moved, and the action plan kept.

Each is a shorter way to an act or a step `sbu record` also takes (`rr-meeting-moved`,
`action-added`, `action-progress`, `action`), with options written out for the task at hand.
"""

from __future__ import annotations

import argparse

from deployments.cli.app import by_option, command, echo, fail, json_option, print_json, subcommand
from deployments.cli.commands import _record_form, _service


def _meeting_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("--on", dest="meeting_on", required=True, metavar="DATE",
                        help="The day the meeting is now held (YYYY-MM-DD).")
    parser.add_argument("--at", dest="start_time", metavar="HH:MM",
                        help="Its start, London time (default: the time it had).")
    parser.add_argument("--place", metavar="TEXT",
                        help="Where it is held, or the link to join (default: where it was); sent to "
                             "everyone invited.")
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="Why it moves (kept in the case store's audit trail only).")
    by_option(parser)
    json_option(parser, "a line")


@command("meeting", _meeting_arguments)
def meeting(args: argparse.Namespace) -> None:
    """Move the Rapid Review meeting to another day, time or place: everyone invited gets an update
    to the same invitation (same UID, higher SEQUENCE), and its reminders follow it.

    Example: sbu meeting SR-2026-0001 --on 2027-01-08 --at 14:00 --place "Town Hall, Room 3"
    --reason "The Panel chair is away on the 7th"
    """
    from models.calendar import LONDON
    from models.forms import MeetingMoveForm

    view = _service().case_view(args.case_ref)
    if view.meeting is not None:
        current = view.meeting.starts_at.astimezone(LONDON)
        args.start_time = args.start_time or f"{current:%H:%M}"
        args.place = args.place or view.meeting.place
    if args.start_time is None or args.place is None:
        fail("the case has no meeting arranged yet: give --at and --place")
    _record_form(args, "rr-meeting-moved", MeetingMoveForm, date_field=None, act=True)


# -- the action plan ---------------------------------------------------------------------------------

def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("--source", required=True, choices=["rapid-review", "cspr"], metavar="REVIEW",
                        help="The review it comes from: rapid-review or cspr.")
    parser.add_argument("--agency", required=True, metavar="AGENCY", help="The agency that owns it.")
    parser.add_argument("--owner-role", dest="owner_role", required=True, metavar="TITLE",
                        help="Who in the agency owns it, by job title (e.g. 'Head of Safeguarding').")
    parser.add_argument("--summary", required=True, metavar="TEXT",
                        help="What is to be done (kept in the case store only).")
    parser.add_argument("--due", required=True, metavar="DATE", help="When it is due (YYYY-MM-DD).")
    by_option(parser)
    json_option(parser, "a line")


@subcommand("add", _add_arguments)
def add(args: argparse.Namespace) -> None:
    """Add an action to the case's action plan; its agency's lead is emailed, and it is chased until
    it is closed.

    Example: sbu action add SR-2026-0001 --source rapid-review --agency health
    --owner-role "Named Nurse" --summary "Audit the discharge checklist" --due 2027-03-31
    """
    from models.forms import ActionForm

    _record_form(args, "action-added", ActionForm, date_field=None, act=True)


def _note_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("action", metavar="ACTION", help="The action (a1, a2, ...).")
    parser.add_argument("--note", required=True, metavar="TEXT",
                        help="The progress (kept in the case store only).")
    parser.add_argument("--evidence", dest="evidence_ref", metavar="REF",
                        help="A reference to the evidence so far.")
    parser.add_argument("--on", dest="noted_on", metavar="DATE",
                        help="The date of the note (default: today).")
    by_option(parser)
    json_option(parser, "a line")


@subcommand("note", _note_arguments)
def note(args: argparse.Namespace) -> None:
    """Note progress on an open action.

    Example: sbu action note SR-2026-0001 a1 --note "Checklist drafted" --evidence AUD-17
    """
    from models.forms import ActionProgressForm

    _record_form(args, "action-progress", ActionProgressForm, date_field="noted_on", act=True)


def _close_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    parser.add_argument("action", metavar="ACTION", help="The action (a1, a2, ...).")
    parser.add_argument("--evidence", dest="evidence_ref", required=True, metavar="REF",
                        help="Where the evidence that it is done is filed.")
    parser.add_argument("--on", dest="completed_on", metavar="DATE",
                        help="The date it was completed (default: today).")
    by_option(parser)
    json_option(parser, "a line")


@subcommand("close", _close_arguments)
def close(args: argparse.Namespace) -> None:
    """Close an action with the reference of its evidence; the case closes when its last one does.

    Example: sbu action close SR-2026-0001 a1 --evidence AUD-17-FINAL
    """
    from models.forms import ActionClosedForm

    _record_form(args, "action", ActionClosedForm, date_field="completed_on")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="The case reference.")
    json_option(parser)


@subcommand("list", _list_arguments)
def listing(args: argparse.Namespace) -> None:
    """List a case's actions: owner, due date, state, notes and evidence.

    Example: sbu action list SR-2026-0001 --json
    """
    from models.calendar import london_date
    from tasks.store.queries import action_plan

    service = _service()
    rows = action_plan(service.store.engine, partnership=service.settings.partnership,
                       case_ref=args.case_ref, today=london_date(service.clock.now()))
    if args.as_json:
        print_json({"case_ref": args.case_ref, "actions": [row.as_json() for row in rows]})
        return
    if not rows:
        echo("no actions")
    for row in rows:
        late = "  LATE" if row.overdue else ""
        echo(f"{row.action:<4} {row.agency:<22} due {row.due:%a %d %b %Y}  {row.state:<9} "
             f"{row.owner_role}: {row.summary}{late}")


def _action_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@command("action", _action_arguments, subcommands=(add, note, close, listing))
def action(args: argparse.Namespace) -> None:
    """Keep the case's action plan: add actions, note progress, close them, list them.

    Example: sbu action list SR-2026-0001
    """
    fail("choose one of: add, note, close, list (see `sbu action --help`)")

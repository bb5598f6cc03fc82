"""The action plan: every action the Rapid Review and the CSPR lead to, each owned by an agency
(and a role in it), due on the date the plan sets, chased until it is closed with the reference of
its evidence (Working Together: the partners see the learning through to improvement; procedure,
"Multi-agency working: all relevant agencies must contribute to reviews and action plans").

Its rules:
- An action comes from a review the case has had: its Rapid Review's outcome, or its CSPR.
- Each action is an item of its own (`a1`, `a2`, ...), with the reminder, overdue and escalation
  ladder, its owning agency's lead emailed when it is added and when it is due.
- Progress notes and an evidence reference may be added while it is open; closing it needs the
  evidence reference.
- The case closes only when its last action closes (`models.processes.case.case_closes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.anchors import AnchorScope, AnchorSpec
from models.enums import ActionSource, Anchor, Role, Stage
from models.errors import Refused
from models.forms import ActionClosedForm, ActionForm, ActionProgressForm
from models.registry import Act, OpenedBy, Process, Step, Wait
from models.timetable import DateSet

# The effects, the procedure's engine and the dashboard's descriptions are imported by the
# functions that use them: `sbu status` and `sbu timetable` read only the declarations below.
if TYPE_CHECKING:
    from models.effects import Effect
    from models.procedure import Context
    from models.state import CaseState


def starts(state: CaseState) -> bool:
    return bool(state.items_of(ACTION.step))


def add_action(state: CaseState, form: ActionForm, ctx: Context) -> list[Effect]:
    from models.effects import ActionAssignedMail, SendEmail, UpdateItem
    from models.procedure import open_item

    match form.source:
        case ActionSource.RAPID_REVIEW:
            if state.anchors.get(Anchor.RR_OUTCOME) is None:
                raise Refused(f"{state.case_ref} has no Rapid Review outcome for an action to come from")
        case ActionSource.CSPR:
            if state.anchors.get(Anchor.CSPR_COMMISSIONED) is None:
                raise Refused(f"{state.case_ref} has no CSPR for an action to come from")
        case _:
            raise AssertionError(f"unhandled source {form.source}")
    if form.due < ctx.today:
        raise Refused("due is in the past")
    number = f"a{len(state.items_of(ACTION.step)) + 1}"
    effects = open_item(state, ACTION, ACTION_PLAN, ctx, subject=number, agency=form.agency,
                        anchor_on=ctx.today, due=form.due, words="set by the action plan")
    return [*effects, SendEmail(ActionAssignedMail(action=number, agency=form.agency, due=form.due)),
            UpdateItem(step=ACTION.step, subject=number, action="action-added",
                       details={"source": form.source.value})]


def note_progress(state: CaseState, form: ActionProgressForm, ctx: Context) -> list[Effect]:
    from models.effects import UpdateItem

    item = state.item(ACTION.step, form.action)
    if item is None or not item.is_open:
        raise Refused(f"{state.case_ref} has no open action {form.action}")
    details = {**item.details, "notes": int(item.details.get("notes", 0)) + 1,
               "last_note_on": form.noted_on.isoformat()}
    if form.evidence_ref is not None:
        details["evidence_ref"] = form.evidence_ref
    return [UpdateItem(step=item.step, subject=item.subject, action="action-progress", details=details)]


def describe_actions(state: CaseState, wait: Wait) -> list[str]:
    from models.descriptions import due_line

    lines = ["Close an action once it is done, with the reference of its evidence; note progress on "
             "an open one; or add a new action, owned by an agency and due on the date the plan sets. "
             "Each open action is chased by email from its due date.", ""]
    for item in state.items_of(ACTION.step):
        if item.is_open:
            owner = f", {item.agency.value}" if item.agency is not None else ""
            lines.append(f"- **Action {item.subject}**{owner}: "
                         + due_line(item, ACTION.rule).removeprefix("**Due:** "))
    return [*lines, "", "Choose what to record at the top of the form."]


ADD_ACTION = Act("action-added", "Action added", ActionForm, add_action, label="New action")
NOTE_PROGRESS = Act("action-progress", "Progress noted", ActionProgressForm, note_progress,
                    date_field="noted_on", label="Progress")
ACTION = Step(
    "action", "Action",
    owner=Role.AGENCY, anchor=Anchor.ACTION_ADDED, source="the action plan (due date set by the plan)",
    clock=DateSet("set by the action plan"), form=ActionClosedForm, subject_field="action",
    waits=("actions",), opens=OpenedBy(ADD_ACTION.name),
    # The act that adds an action emails its agency instead of a "step opened" email.
    notify_owner=False, label="Action done")

ACTION_PLAN = Process(
    id="action-plan",
    title="Action plan",
    flow="flows.action_plan:action_plan_flow",
    run_name="{case_ref} action plan",
    steps=(ACTION,),
    waits=(Wait("actions", "Action plan", acts=(ADD_ACTION, NOTE_PROGRESS), describe=describe_actions),),
    starts=starts,
    acts=(ADD_ACTION, NOTE_PROGRESS),
    stage=Stage.ACTION_PLAN,
    # Each action's own date, not the case's: its due date is the plan's, and re-timing the action
    # moves it.
    anchors=(AnchorSpec(Anchor.ACTION_ADDED, "Action added to the plan", scope=AnchorScope.ITEM),),
)

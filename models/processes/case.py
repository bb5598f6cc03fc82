"""The case: from referral to the DSPs' decision, the Serious Incident Notification, and closure.

Its rules, each with its source:
- A referral opens the DSP decision, due one working day after it reached the SBU, and tells the
  three DSPs (local procedure, step 2).
- The decision must be one the procedure allows (`models.rules.dsp_decision_refusals`); it sets
  the case's path (`models.rules.case_path`). With a SIN, the local authority's two notification
  steps open, counted from the day it became aware (Children Act 2004 s16C; GOV.UK guidance).
  Without one, a Rapid Review the DSPs chose counts from their decision (`models.rules.
  rapid_review_starts_at_decision`).
- The SIN's submission is the case's notification: the Rapid Review counts from it.
- The case closes once it is decided and nothing that keeps it open is left open in any of its
  processes (`Step.keeps_case_open`): at once on "no further action"; on the SIN-only path once
  the local authority has notified and informed the partners; otherwise once its reviews are done
  and the last action of their action plans is closed (Working Together: the partners see the
  learning through to its actions).
"""

from __future__ import annotations

from datetime import date

from models.anchors import AnchorSpec
from models.calendar import end_of_london_day
from models.descriptions import due_line
from models.effects import (
    DecisionRecordedMail,
    Effect,
    OpenItem,
    ReferralReceivedMail,
    SendEmail,
    SetAnchor,
    SetPath,
    SetStatus,
    StoreDecision,
)
from models.enums import DSP_ROLES, INTERFACE_NAMES, CasePath, CaseStatus, Role, Stage
from models.errors import Refused
from models.forms import DspDecisionForm, PartnersInformedForm, SignedByTheDsps, SinSubmissionForm
from models.procedure import Context, complete_item, open_item
from models.registry import OpenedBy, Process, Step, Wait
from models.rules import (
    DECISION_RULES,
    case_path,
    dsp_decision_refusals,
    notification_duty,
    rapid_review_starts_at_decision,
)
from models.state import CaseState, ItemState
from models.timetable import Anchor, ClockSetting, WorkingDaysAfter

SIN_PATHS = (CasePath.SIN_AND_RAPID_REVIEW, CasePath.SIN_ONLY)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# -- the DSP decision ----------------------------------------------------------------------------

def record_decision(state: CaseState, form: DspDecisionForm, ctx: Context, item: ItemState) -> list[Effect]:
    refusals = dsp_decision_refusals(state.facts, sin=form.sin, rapid_review=form.rapid_review)
    if refusals:
        raise Refused(f"{state.case_ref}: the decision was not recorded: {'; '.join(refusals)}")
    path = case_path(state.facts, sin=form.sin, rapid_review=form.rapid_review)
    effects: list[Effect] = [
        StoreDecision(sin=form.sin, rapid_review=form.rapid_review, path=path, rationale=form.rationale,
                      sign_off=tuple((role, signed.name, signed.deputy)
                                     for role, signed in form.signatures()),
                      decided_on=form.decided_on),
        SetPath(path), SetAnchor(Anchor.DECISION, form.decided_on), SetStatus(CaseStatus.IN_PROGRESS),
        *complete_item(item, form.decided_on, details={"sin": form.sin, "rapid_review": form.rapid_review,
                                                       "deputies": deputies(form)}),
        SendEmail(DecisionRecordedMail(path)),
    ]
    # With a SIN, its two steps open next (`on_a_sin_path`).
    if rapid_review_starts_at_decision(path):
        # No SIN: the decision is the notification the Rapid Review counts from.
        effects.append(SetAnchor(Anchor.NOTIFICATION, form.decided_on))
    return effects


def on_a_sin_path(state: CaseState) -> bool:
    return state.path in SIN_PATHS


def deputies(form: SignedByTheDsps) -> list[str]:
    """The DSP roles signed for by a deputy: structured, so an item can keep it (the names stay in
    the store's records)."""
    return [role.value for role, signed in form.signatures() if signed.deputy]


def refuse_a_conflicting_decision(state: CaseState, form: DspDecisionForm) -> None:
    """The same decision again is already recorded; a different one is refused (docs/architecture.md,
    "Reliability")."""
    previous = state.decision
    if previous is None or (previous.sin, previous.rapid_review) == (form.sin, form.rapid_review):
        return
    # Neither the values (the refused ones or the recorded ones) nor who recorded it: on the
    # dashboard this message is shown in Prefect, which carries no names (docs/architecture.md, "Data
    # protection").
    where = f" through {INTERFACE_NAMES[previous.recorded_via]}" if previous.recorded_via else ""
    raise Refused(f"{state.case_ref} already has a DSP decision, already recorded{where}; a conflicting "
                  f"decision was not recorded (`sbu status {state.case_ref}` shows the one recorded)")


def describe_decision(state: CaseState, wait: Wait) -> list[str]:
    duty = notification_duty(state.facts)
    item = state.item(DSP_DECISION.step)
    return [
        "The three Delegated Safeguarding Partners decide whether the local authority submits a "
        "**Serious Incident Notification** and whether a **Rapid Review** is held.",
        "",
        due_line(item, DSP_DECISION.rule) if item is not None else "",
        "",
        f"**What the procedure says for this referral:** {duty.reason}.",
        "",
        *(f"- {rule}" for rule in DECISION_RULES),
        "",
        "The rationale is copied to the case store and removed from Prefect once read.",
    ]


# -- the Serious Incident Notification ---------------------------------------------------------------

def record_sin_submission(state: CaseState, form: SinSubmissionForm, ctx: Context,
                          item: ItemState) -> list[Effect]:
    # The submission is the case's notification (Working Together): the Rapid Review's clocks and
    # the report to the Panel count from it.
    return [SetAnchor(Anchor.SIN_SUBMITTED, form.completed_on),
            SetAnchor(Anchor.NOTIFICATION, form.completed_on),
            *complete_item(item, form.completed_on, details={"national_ref": form.national_ref})]


def describe_notification(state: CaseState, wait: Wait) -> list[str]:
    lines = ["Record what the local authority has done: the Serious Incident Notification it "
             "submitted through the Child Safeguarding Incident Notification System (its reference "
             "and date), and telling the safeguarding partners. Choose the step at the top of the form.",
             ""]
    for spec in wait.items:
        item = state.item(spec.step)
        if item is not None:
            lines += [f"**{spec.title}**: {item.state.value}", "",
                      due_line(item, spec.rule) if item.is_open else "", ""]
    return lines


# -- starting and closing ------------------------------------------------------------------------------

def start_case(state: CaseState, ctx: Context) -> list[Effect]:
    """A referral opens the DSP decision and tells the DSPs when it is due."""
    effects = open_item(state, DSP_DECISION, CASE, ctx)
    opened = next((e for e in effects if isinstance(e, OpenItem)), None)
    if opened is not None:
        effects.append(SendEmail(ReferralReceivedMail(due_at=end_of_london_day(opened.due))))
    return effects


def case_closes(state: CaseState) -> str | None:
    """Why the case closes once nothing that keeps it open is open (the engine checks that), or
    None: it is not decided yet."""
    if state.path is None:
        return None
    match state.path:
        case CasePath.NO_FURTHER_ACTION:
            return "no further action (DSP decision)"
        case CasePath.SIN_ONLY:
            return "notified; no Rapid Review required"
        case CasePath.SIN_AND_RAPID_REVIEW | CasePath.RAPID_REVIEW_ONLY | CasePath.NEAR_MISS_RAPID_REVIEW:
            return "the reviews are done and every action of their plans is closed"
    raise AssertionError(f"unhandled path {state.path}")


DSP_DECISION = Step(
    "dsp-decision", "DSPs decide on a SIN and a Rapid Review",
    owner=Role.SBU, anchor=Anchor.REFERRAL_RECEIVED, source="local procedure, step 2",
    clock=WorkingDaysAfter(ClockSetting("dsp_decision_days", 1, at_most=60)),
    form=DspDecisionForm, recorded_by=(Role.SBU, *DSP_ROLES), waits=("dsp-decision",),
    record=record_decision, on_repeat=refuse_a_conflicting_decision, date_field="decided_on",
    # The referral's own email tells the DSPs (`start_case`); no second "step opened".
    notify_owner=False)
SIN_SUBMISSION = Step(
    "sin-submission", "Local authority submits the Serious Incident Notification",
    owner=Role.LOCAL_AUTHORITY, anchor=Anchor.LA_AWARE, source="Children Act 2004 s16C; GOV.UK guidance",
    clock=WorkingDaysAfter(ClockSetting("sin_submission_days", 5, at_most=60)),
    form=SinSubmissionForm, recorded_by=(Role.SBU, Role.LOCAL_AUTHORITY), waits=("notification",),
    opens=OpenedBy(DSP_DECISION.step, when=on_a_sin_path), record=record_sin_submission,
    label="SIN submitted")
PARTNERS_INFORMED = Step(
    "partners-informed", "Local authority informs the safeguarding partners",
    owner=Role.LOCAL_AUTHORITY, anchor=Anchor.LA_AWARE, source="GOV.UK guidance",
    clock=WorkingDaysAfter(ClockSetting("partners_informed_days", 5, at_most=60)),
    form=PartnersInformedForm, recorded_by=(Role.SBU, Role.LOCAL_AUTHORITY), waits=("notification",),
    opens=OpenedBy(DSP_DECISION.step, when=on_a_sin_path), label="Partners told")

# -- its anchor dates ---------------------------------------------------------------------------------

def referral_anchors(*, referred_on: date, la_aware_on: date) -> dict[Anchor, date]:
    """The anchors a referral brings with it, set when the case is stored. The referral itself
    keeps what was referred (`cases.referred_on`, `cases.la_aware_on`); the anchor is the date the
    clocks count from, which a person may correct (the local authority's awareness) with a reason."""
    return {Anchor.REFERRAL_RECEIVED: referred_on, Anchor.LA_AWARE: la_aware_on}


CASE = Process(
    id="case",
    title="Case",
    flow="flows.case:case_flow",
    run_name="{case_ref}",
    steps=(DSP_DECISION, SIN_SUBMISSION, PARTNERS_INFORMED),
    waits=(
        Wait("dsp-decision", "DSP decision", describe=describe_decision),
        Wait("notification", "Notification by the local authority", describe=describe_notification),
    ),
    on_start=start_case,
    closes=case_closes,
    stage=Stage.NOTIFICATION,
    # The referral's two dates (`referral_anchors`), then those its decision and its SIN set.
    anchors=(
        AnchorSpec(Anchor.REFERRAL_RECEIVED, "Referral received by the SBU", movable=False),
        AnchorSpec(Anchor.LA_AWARE, "Local authority became aware"),
        AnchorSpec(Anchor.DECISION, "DSPs' decision"),
        AnchorSpec(Anchor.NOTIFICATION, "Notification (the SIN, or for a near miss the decision)"),
        AnchorSpec(Anchor.SIN_SUBMITTED, "Serious Incident Notification submitted"),
    ),
)

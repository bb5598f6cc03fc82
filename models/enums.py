"""Closed choices of the procedure. Every value is the spelling used on forms, in JSON and in the store."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    DEATH = "death"
    SERIOUS_HARM = "serious-harm"
    NEAR_MISS = "near-miss"


class AbuseOrNeglect(StrEnum):
    KNOWN = "known"
    SUSPECTED = "suspected"
    NOT_SUSPECTED = "not-suspected"


class Agency(StrEnum):
    """Agencies that may refer a case or be asked for information."""

    POLICE = "police"
    HEALTH = "health"
    CHILDREN_SOCIAL_CARE = "children-social-care"
    EDUCATION = "education"
    EARLY_YEARS = "early-years"
    PROBATION = "probation"
    YOUTH_JUSTICE = "youth-justice"
    HOUSING = "housing"
    ADULT_SOCIAL_CARE = "adult-social-care"
    MENTAL_HEALTH = "mental-health"
    AMBULANCE = "ambulance"
    GENERAL_PRACTICE = "general-practice"
    VOLUNTARY_SECTOR = "voluntary-sector"


class StepId(StrEnum):
    """Every step of the procedure that has an owner and a due date (DESIGN.md §2)."""

    DSP_DECISION = "dsp-decision"
    SIN_SUBMISSION = "sin-submission"
    PARTNERS_INFORMED = "partners-informed"
    RR_AGENCY_RESPONSES = "rr-agency-responses"
    RR_MEETING = "rr-meeting"
    RR_OUTCOME = "rr-outcome"
    RR_REPORT_TO_PANEL = "rr-report-to-panel"
    RR_PANEL_RESPONSE = "rr-panel-response"
    RR_ACTION_PLAN = "rr-action-plan"
    CSPR_REVIEWER_APPOINTED = "cspr-reviewer-appointed"
    CSPR_TERMS_OF_REFERENCE = "cspr-terms-of-reference"
    CSPR_IMR_REQUESTS = "cspr-imr-requests"
    CSPR_IMR = "cspr-imr"
    CSPR_FAMILY_ENGAGEMENT = "cspr-family-engagement"
    CSPR_DRAFT_REPORT = "cspr-draft-report"
    CSPR_FINAL_REPORT = "cspr-final-report"
    CSPR_REPORT_TO_PANEL = "cspr-report-to-panel"
    CSPR_PUBLICATION = "cspr-publication"
    CSPR_ACTION_PLAN = "cspr-action-plan"
    ACTION = "action"


class Anchor(StrEnum):
    """The dates a clock can start from; each is stored separately on the case (DESIGN.md §2)."""

    REFERRAL_RECEIVED = "referral-received"
    LA_AWARE = "la-aware"
    DECISION = "decision"
    NOTIFICATION = "notification"
    SIN_SUBMITTED = "sin-submitted"
    MEETING = "meeting"
    RR_OUTCOME = "rr-outcome"
    RR_REPORT_SENT = "rr-report-sent"
    CSPR_COMMISSIONED = "cspr-commissioned"
    PLANNED_PUBLICATION = "planned-publication"
    IMRS_REQUESTED = "imrs-requested"
    CSPR_PUBLISHED = "cspr-published"
    # An item's own date, not the case's: the day an action was added to the plan.
    ACTION_ADDED = "action-added"


# The anchors that are dates of the case, each stored on it; the others are each item's own.
CASE_ANCHORS = frozenset(anchor for anchor in Anchor if anchor is not Anchor.ACTION_ADDED)


class StepState(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class TimerKind(StrEnum):
    REMINDER = "reminder"
    OVERDUE = "overdue"
    ESCALATION = "escalation"


class TimerState(StrEnum):
    SCHEDULED = "scheduled"
    FIRED = "fired"
    CANCELLED = "cancelled"


class CaseStatus(StrEnum):
    AWAITING_DECISION = "awaiting-decision"
    IN_PROGRESS = "in-progress"
    CLOSED = "closed"


class CasePath(StrEnum):
    """The route a case takes once the DSPs have decided."""

    SIN_AND_RAPID_REVIEW = "sin-and-rapid-review"
    SIN_ONLY = "sin-only"
    RAPID_REVIEW_ONLY = "rapid-review-only"
    NEAR_MISS_RAPID_REVIEW = "near-miss-rapid-review"
    NO_FURTHER_ACTION = "no-further-action"


class NotificationDuty(StrEnum):
    """What the procedure says about notifying the National Panel for this referral."""

    MANDATORY = "mandatory"  # looked-after child's death, whatever the cause
    CRITERIA_MET = "criteria-met"  # death or serious harm, abuse or neglect known or suspected
    SHOULD_NOTIFY = "should-notify"  # care leaver's death up to and including 24
    NOT_NOTIFIABLE = "not-notifiable"  # near miss: no SIN, learning focus
    CRITERIA_NOT_MET = "criteria-not-met"


class Role(StrEnum):
    """Who receives email and who owns a step."""

    DSP_LA = "dsp-la"
    DSP_HEALTH = "dsp-health"
    DSP_POLICE = "dsp-police"
    SBU = "sbu"
    LOCAL_AUTHORITY = "local-authority"
    FALLBACK = "fallback"
    # Not an address of its own: the agency an item is owed by (its information, its IMR, its
    # action), whose designated lead is emailed.
    AGENCY = "agency"


# The three Delegated Safeguarding Partners, each signing for their agency (procedure, step 2).
DSP_ROLES = (Role.DSP_LA, Role.DSP_HEALTH, Role.DSP_POLICE)
DSP_ROLE_TITLES: dict[Role, str] = {
    Role.DSP_LA: "Director of Children's Services (local authority)",
    Role.DSP_HEALTH: "Director of Nursing (ICB)",
    Role.DSP_POLICE: "Chief Superintendent (police)",
}


class ReviewRoute(StrEnum):
    """What the Rapid Review recommends, and, once the National Panel has answered, the route the
    case's review takes (`models.rules.review_route`)."""

    LOCAL_CSPR = "local-cspr"
    NO_CSPR = "no-cspr"
    NATIONAL_REVIEW = "national-review"


class PanelResponse(StrEnum):
    """The National Panel's answer to a Rapid Review report."""

    AGREE = "agree"
    DISAGREE = "disagree"
    NATIONAL_REVIEW = "national-review"


class FamilyEngagement(StrEnum):
    ENGAGED = "engaged"
    DECLINED = "declined"
    NOT_APPROPRIATE = "not-appropriate"


class ActionSource(StrEnum):
    """The review an action of the plan comes from."""

    RAPID_REVIEW = "rapid-review"
    CSPR = "cspr"


class Stage(StrEnum):
    """Where a case stands, for the dashboard's tags and `sbu status` (`models.state.stage_of`)."""

    AWAITING_DECISION = "awaiting-decision"
    NOTIFICATION = "notification"
    RAPID_REVIEW = "rapid-review"
    CSPR = "cspr"
    ACTION_PLAN = "action-plan"
    CLOSED = "closed"


class RunLoss(StrEnum):
    """How Prefect lost a case's flow run that the case store still needs: the reconciliation
    sweep replaces the run and tells the SBU which of these it found."""

    MISSING = "missing"  # the run is gone from Prefect (deleted)
    CRASHED = "crashed"  # its process died (or a stopped serve left it running)
    FAILED = "failed"  # e.g. a pause whose timeout expired: Prefect fails the run


class Interface(StrEnum):
    """Where a change came from, for the audit trail."""

    CLI = "cli"
    PREFECT_UI = "prefect-ui"
    # The officers' desk (`sbu web`).
    WEB = "web"
    SYSTEM = "system"


# How a message to a person names each interface.
INTERFACE_NAMES: dict[Interface, str] = {Interface.CLI: "the `sbu` command",
                                         Interface.PREFECT_UI: "the dashboard",
                                         Interface.WEB: "the desk",
                                         Interface.SYSTEM: "the system"}


def known_step(value: str) -> str:
    """`value` as a `StepId` member when it is one of the procedure's own steps (so `is` works as
    everywhere else), else unchanged: a step a registered process brought."""
    try:
        return StepId(value)
    except ValueError:
        return value

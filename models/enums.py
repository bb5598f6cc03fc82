"""Closed choices of the procedure. Every value is the spelling used on forms, in JSON and in the store."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Derived from the step declarations; see `__getattr__` at the end.
    from models.processes import StepId as StepId


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
# The roles a person can hold (`Role.FALLBACK` and `Role.AGENCY` are mailboxes, not people); a
# person may also be an agency's lead (`agency:<agency>`) or hold a role a process declares.
PERSON_ROLES = frozenset({*DSP_ROLES, Role.SBU, Role.LOCAL_AUTHORITY})
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
    SYSTEM = "system"


# How a message to a person names each interface.
INTERFACE_NAMES: dict[Interface, str] = {Interface.CLI: "the `sbu` command",
                                         Interface.PREFECT_UI: "the dashboard",
                                         Interface.SYSTEM: "the system"}


def known_step(value: str) -> str:
    """A step id read from the store, as one shared string per id: the cases' items and timers
    name the same few steps over and over. The ids are the registry's (`models.registry.Step`)."""
    return sys.intern(value)


def __getattr__(name: str) -> Any:
    # The step ids are declared once, with their steps (`models.processes.StepId` derives readable
    # constants from them); the mail module still imports `StepId` from here. Import it from
    # `models.processes` in new code.
    if name == "StepId":
        from models.processes import StepId

        return StepId
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

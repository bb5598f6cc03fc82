"""Closed choices of the procedure, and the ids of its anchor dates (open: a process may add one).
Every value is the spelling used on forms, in JSON and in the store."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from typing import ClassVar


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


class Anchor(str):
    """A date a clock can count from (an anchor), by its id: the procedure's own are the constants
    below; a process may declare more (`models.anchors.AnchorSpec`, `models.registry.Process`).

    Open, not an enum, so that a partnership's process can bring its own; spelt as every id that
    reaches a key is (lowercase letters and digits, words joined by single dashes, at most 40).
    Each id is made once and then handed back (interned), so anchors compare with `is` as the
    members of an enum do; `value` is the id, as an enum member's is."""

    __slots__ = ()
    _made: ClassVar[dict[str, Anchor]] = {}

    REFERRAL_RECEIVED: ClassVar[Anchor]
    LA_AWARE: ClassVar[Anchor]
    DECISION: ClassVar[Anchor]
    NOTIFICATION: ClassVar[Anchor]
    SIN_SUBMITTED: ClassVar[Anchor]
    MEETING: ClassVar[Anchor]
    RR_OUTCOME: ClassVar[Anchor]
    RR_REPORT_SENT: ClassVar[Anchor]
    CSPR_COMMISSIONED: ClassVar[Anchor]
    PLANNED_PUBLICATION: ClassVar[Anchor]
    IMRS_REQUESTED: ClassVar[Anchor]
    CSPR_PUBLISHED: ClassVar[Anchor]
    ACTION_ADDED: ClassVar[Anchor]

    def __new__(cls, value: str) -> Anchor:
        made = cls._made.get(value)
        if made is not None:
            return made
        if not isinstance(value, str) or not _ANCHOR_ID.fullmatch(value):
            # Not echoed: it may be anything a person typed.
            raise ValueError("an anchor id is lowercase letters and digits, words joined by single "
                             "dashes, at most 40 characters")
        made = super().__new__(cls, value)
        cls._made[value] = made
        return made

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Anchor({self.value!r})"


_ANCHOR_ID = re.compile(r"(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*", re.ASCII)

Anchor.REFERRAL_RECEIVED = Anchor("referral-received")
Anchor.LA_AWARE = Anchor("la-aware")
Anchor.DECISION = Anchor("decision")
Anchor.NOTIFICATION = Anchor("notification")
Anchor.SIN_SUBMITTED = Anchor("sin-submitted")
Anchor.MEETING = Anchor("meeting")
Anchor.RR_OUTCOME = Anchor("rr-outcome")
Anchor.RR_REPORT_SENT = Anchor("rr-report-sent")
Anchor.CSPR_COMMISSIONED = Anchor("cspr-commissioned")
Anchor.PLANNED_PUBLICATION = Anchor("planned-publication")
Anchor.IMRS_REQUESTED = Anchor("imrs-requested")
Anchor.CSPR_PUBLISHED = Anchor("cspr-published")
# An item's own date, not the case's: the day an action was added to the plan.
Anchor.ACTION_ADDED = Anchor("action-added")


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
    """Where a case stands, for the dashboard's tags and `sbu status`
    (`models.registry.Registry.stage_of`)."""

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
    # A case's history brought in from a file (`sbu import`).
    IMPORT = "import"


# How a message to a person names each interface.
INTERFACE_NAMES: dict[Interface, str] = {Interface.CLI: "the `sbu` command",
                                         Interface.PREFECT_UI: "the dashboard",
                                         Interface.WEB: "the desk",
                                         Interface.IMPORT: "an import",
                                         Interface.SYSTEM: "the system"}


def known_step(value: str) -> str:
    """A step id read from the store, as one shared string per id: the cases' items and timers
    name the same few steps over and over. The ids are the registry's (`models.registry.Step`)."""
    return sys.intern(value)


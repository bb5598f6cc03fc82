"""The rules that change a case's path. Each rule is one function here, with its source named.

Sources: the partnership's procedure (see docs/procedure.md, "Sources"), Working Together to
Safeguard Children, and GOV.UK guidance on serious incident notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.enums import AbuseOrNeglect, CasePath, Category, NotificationDuty, PanelResponse, ReviewRoute

# A care leaver's death is notifiable "up to and including age 24" (procedure: "Other circumstances").
CARE_LEAVER_MAX_AGE = 24
# A looked-after child is under 18.
LOOKED_AFTER_MAX_AGE = 17


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the path rules need to know about a referral, and nothing more."""

    category: Category
    abuse_or_neglect: AbuseOrNeglect
    looked_after_child: bool
    care_leaver: bool

    @property
    def abuse_or_neglect_known_or_suspected(self) -> bool:
        return self.abuse_or_neglect in (AbuseOrNeglect.KNOWN, AbuseOrNeglect.SUSPECTED)


@dataclass(frozen=True, slots=True)
class PathRule:
    """One rule that changes a case's path, as the people deciding read it, with its authority.
    The functions below apply the rules; the dashboard's forms list them from here."""

    summary: str
    source: str

    def __str__(self) -> str:
        return f"{self.summary} ({self.source})"


LOOKED_AFTER_CHILD_DEATH = PathRule(
    "A looked-after child's death must be notified, whatever the cause.",
    "procedure, 'Other circumstances'; Working Together")
CARE_LEAVER_DEATH = PathRule(
    "A care leaver's death (up to and including age 24) should be notified; no Rapid Review or "
    "CSPR is required, though the DSPs may choose one.", "procedure, 'Other circumstances'")
NEAR_MISS = PathRule("A near miss is not notified; the DSPs decide whether a Rapid Review is needed.",
                     "procedure, step 5")
SIN_IMPLIES_RAPID_REVIEW = PathRule(
    "Once a SIN is submitted, a Rapid Review is required unless the case is found not to meet the "
    "criteria.", "GOV.UK guidance")
NOTIFICATION_CRITERIA = PathRule(
    "A child died or was seriously harmed and abuse or neglect is known or suspected: the local "
    "authority must notify within 5 working days.", "Children Act 2004 s16C")

# Every rule of the DSP decision, in the order the form lists them.
DECISION_RULES = (LOOKED_AFTER_CHILD_DEATH, CARE_LEAVER_DEATH, NEAR_MISS, SIN_IMPLIES_RAPID_REVIEW)


@dataclass(frozen=True, slots=True)
class Duty:
    duty: NotificationDuty
    reason: str
    rule: PathRule | None = None


def notification_duty(facts: CaseFacts) -> Duty:
    """Whether, and how strongly, the procedure calls for a Serious Incident Notification."""
    if facts.category is Category.DEATH and facts.looked_after_child:
        return Duty(NotificationDuty.MANDATORY,
                    "the death of a looked-after child must always be notified, whatever the cause "
                    f"({LOOKED_AFTER_CHILD_DEATH.source})", LOOKED_AFTER_CHILD_DEATH)
    if facts.category is Category.NEAR_MISS:
        return Duty(NotificationDuty.NOT_NOTIFIABLE,
                    "a near miss is not notified; the DSPs decide whether a Rapid Review is needed "
                    f"({NEAR_MISS.source})", NEAR_MISS)
    # A care leaver's death has its own rule whatever the cause (docs/procedure.md): notify, with no
    # Rapid Review or CSPR required, though the DSPs may choose one.
    if facts.category is Category.DEATH and facts.care_leaver:
        return Duty(NotificationDuty.SHOULD_NOTIFY,
                    "the death of a care leaver up to and including age 24 should be notified; "
                    f"a Rapid Review or CSPR is not required ({CARE_LEAVER_DEATH.source})",
                    CARE_LEAVER_DEATH)
    if facts.abuse_or_neglect_known_or_suspected:
        return Duty(NotificationDuty.CRITERIA_MET,
                    "a child died or was seriously harmed and abuse or neglect is known or suspected: "
                    "the local authority must notify within 5 working days "
                    f"({NOTIFICATION_CRITERIA.source})", NOTIFICATION_CRITERIA)
    return Duty(NotificationDuty.CRITERIA_NOT_MET,
                "abuse or neglect is not suspected: the notification criteria are not met")


def rapid_review_follows_sin(facts: CaseFacts) -> bool:
    """Once a SIN is submitted a Rapid Review is required unless the case is found not to meet the
    criteria (GOV.UK guidance). A looked-after child's death without suspected abuse or neglect,
    and a care leaver's death, are notified without a Rapid Review being required."""
    if facts.category is Category.NEAR_MISS:
        return False
    if facts.category is Category.DEATH and facts.care_leaver:
        return False
    return facts.abuse_or_neglect_known_or_suspected


def dsp_decision_refusals(facts: CaseFacts, *, sin: bool, rapid_review: bool) -> list[str]:
    """Why the procedure does not allow this DSP decision; empty when it does."""
    duty = notification_duty(facts)
    refusals: list[str] = []
    if not sin and duty.duty is NotificationDuty.MANDATORY:
        refusals.append(f"a SIN is required: {duty.reason}")
    if sin and duty.duty is NotificationDuty.NOT_NOTIFIABLE:
        refusals.append("a near miss is not notified (no SIN); if a child died or was seriously "
                        "harmed, refer it again under the right category")
    if sin and not rapid_review and rapid_review_follows_sin(facts):
        refusals.append("once a SIN is submitted a Rapid Review is required unless the case is "
                        f"found not to meet the criteria ({SIN_IMPLIES_RAPID_REVIEW.source})")
    return refusals


def case_path(facts: CaseFacts, *, sin: bool, rapid_review: bool) -> CasePath:
    """The route an allowed decision sets the case on."""
    match (sin, rapid_review):
        case (True, True):
            return CasePath.SIN_AND_RAPID_REVIEW
        case (True, False):
            return CasePath.SIN_ONLY
        case (False, True) if facts.category is Category.NEAR_MISS:
            return CasePath.NEAR_MISS_RAPID_REVIEW
        case (False, True):
            return CasePath.RAPID_REVIEW_ONLY
        case (False, False):
            return CasePath.NO_FURTHER_ACTION
    raise AssertionError("unreachable: every pair of booleans is matched")


def rapid_review_starts_at_decision(path: CasePath) -> bool:
    """A Rapid Review's clock starts at notification: the SIN's submission, or, where there is no
    SIN (a near miss, or a review the DSPs chose without one), the DSPs' decision."""
    return path in (CasePath.NEAR_MISS_RAPID_REVIEW, CasePath.RAPID_REVIEW_ONLY)


# -- after the Rapid Review ----------------------------------------------------------------------

RAPID_REVIEW_RECOMMENDS = PathRule(
    "The Rapid Review recommends whether a local CSPR is needed, or refers the case to the National "
    "Panel for a national review; a local CSPR is commissioned on its recommendation.",
    "procedure, steps 4 and 6; Working Together 2023, chapter 5")
NATIONAL_REVIEW_NEEDS_NOTIFICATION = PathRule(
    "Only a case notified to the National Panel (a SIN submitted) can be referred for a national review.",
    "Working Together 2023, chapter 5")
PANEL_RESPONSE_CHANGES_ROUTE = PathRule(
    "The National Panel's response can change the route: where it disagrees that no local CSPR is "
    "needed, or declines a national review, a local CSPR is commissioned; where it will hold a national "
    "review, a local CSPR is not carried on.", "National Panel practice; Working Together 2023, chapter 5")

# Every rule of the Rapid Review's outcome, in the order the form lists them.
OUTCOME_RULES = (RAPID_REVIEW_RECOMMENDS, NATIONAL_REVIEW_NEEDS_NOTIFICATION, PANEL_RESPONSE_CHANGES_ROUTE)


def outcome_refusals(*, notified: bool, recommendation: ReviewRoute) -> list[str]:
    """Why the procedure does not allow this Rapid Review recommendation; empty when it does."""
    if recommendation is ReviewRoute.NATIONAL_REVIEW and not notified:
        return [f"a case that was not notified cannot be referred for a national review "
                f"({NATIONAL_REVIEW_NEEDS_NOTIFICATION.source})"]
    return []


def review_route(recommendation: ReviewRoute, response: PanelResponse | None) -> ReviewRoute:
    """The route a case's review takes: the Rapid Review's recommendation until the National Panel
    answers, then what its answer makes of it. Where the Panel disagrees with a local CSPR, the
    decision is still the safeguarding partners' and the CSPR goes on; the Panel's view is recorded."""
    match response:
        case None | PanelResponse.AGREE:
            return recommendation
        case PanelResponse.NATIONAL_REVIEW:
            return ReviewRoute.NATIONAL_REVIEW
        case PanelResponse.DISAGREE:
            return ReviewRoute.LOCAL_CSPR
    raise AssertionError(f"unhandled Panel response {response!r}")

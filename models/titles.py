"""How the procedure's closed choices are named to a person, on the desk and on the dashboard's
forms: "Children's social care", not `children-social-care`. A value with no title here (one a
registered process brought) is shown as its words, capitalised. A title reads back as its value
(`value_of`), so a form may offer titles and still record values."""

from __future__ import annotations

from enum import Enum

from models.enums import (
    AbuseOrNeglect,
    ActionSource,
    Agency,
    CasePath,
    CaseStatus,
    Category,
    FamilyEngagement,
    Interface,
    PanelResponse,
    ReviewRoute,
    Stage,
    StepState,
)
from models.reporting import Timing

# Keyed by member, read by (enum, value): members of different enums with the same value (a stage
# and a status both "closed") are equal as strings, and each has a title of its own.
_TITLED: tuple[tuple[Enum, str], ...] = (
    (Agency.POLICE, "Police"),
    (Agency.HEALTH, "Health (ICB)"),
    (Agency.CHILDREN_SOCIAL_CARE, "Children's social care"),
    (Agency.EDUCATION, "Education"),
    (Agency.EARLY_YEARS, "Early years"),
    (Agency.PROBATION, "Probation"),
    (Agency.YOUTH_JUSTICE, "Youth justice"),
    (Agency.HOUSING, "Housing"),
    (Agency.ADULT_SOCIAL_CARE, "Adult social care"),
    (Agency.MENTAL_HEALTH, "Mental health"),
    (Agency.AMBULANCE, "Ambulance service"),
    (Agency.GENERAL_PRACTICE, "General practice"),
    (Agency.VOLUNTARY_SECTOR, "Voluntary sector"),
    (Category.DEATH, "Death"),
    (Category.SERIOUS_HARM, "Serious harm"),
    (Category.NEAR_MISS, "Near miss"),
    (AbuseOrNeglect.KNOWN, "Known"),
    (AbuseOrNeglect.SUSPECTED, "Suspected"),
    (AbuseOrNeglect.NOT_SUSPECTED, "Not suspected"),
    (ReviewRoute.LOCAL_CSPR, "A local CSPR"),
    (ReviewRoute.NO_CSPR, "No CSPR"),
    (ReviewRoute.NATIONAL_REVIEW, "A national review (referred to the Panel)"),
    (PanelResponse.AGREE, "Agrees with the recommendation"),
    (PanelResponse.DISAGREE, "Disagrees with the recommendation"),
    (PanelResponse.NATIONAL_REVIEW, "Will hold a national review"),
    (FamilyEngagement.ENGAGED, "Engaged"),
    (FamilyEngagement.DECLINED, "Declined"),
    (FamilyEngagement.NOT_APPROPRIATE, "Not appropriate"),
    (ActionSource.RAPID_REVIEW, "The Rapid Review"),
    (ActionSource.CSPR, "The CSPR"),
    (CasePath.SIN_AND_RAPID_REVIEW, "SIN and Rapid Review"),
    (CasePath.SIN_ONLY, "SIN only"),
    (CasePath.RAPID_REVIEW_ONLY, "Rapid Review only"),
    (CasePath.NEAR_MISS_RAPID_REVIEW, "Near miss: Rapid Review"),
    (CasePath.NO_FURTHER_ACTION, "No further action"),
    (CaseStatus.AWAITING_DECISION, "Awaiting the DSPs' decision"),
    (CaseStatus.IN_PROGRESS, "In progress"),
    (CaseStatus.CLOSED, "Closed"),
    (Stage.AWAITING_DECISION, "Awaiting decision"),
    (Stage.NOTIFICATION, "Notification"),
    (Stage.RAPID_REVIEW, "Rapid Review"),
    (Stage.CSPR, "CSPR"),
    (Stage.ACTION_PLAN, "Action plan"),
    (Stage.CLOSED, "Closed"),
    (StepState.OPEN, "Open"),
    (StepState.DONE, "Done"),
    (StepState.CANCELLED, "Cancelled"),
    (Timing.ON_TIME, "Done on time"),
    (Timing.LATE, "Done late"),
    (Timing.OPEN_OVERDUE, "Overdue"),
    (Timing.OPEN, "Open"),
    (Timing.CANCELLED, "Cancelled"),
    (Interface.CLI, "sbu command"),
    (Interface.PREFECT_UI, "dashboard"),
    (Interface.WEB, "desk"),
    (Interface.SYSTEM, "system"),
)
TITLES: dict[tuple[type[Enum], str], str] = {(type(member), str(member.value)): title
                                                for member, title in _TITLED}


def words(value: str) -> str:
    """`lessons-learned` as "Lessons learned"."""
    text = value.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def title_of(value: Enum | str | None) -> str:
    """A closed choice as a person reads it ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return TITLES.get((type(value), str(value.value))) or words(str(value.value))
    return words(value)


def agency_title(value: str) -> str:
    """An agency, given by its value (an item's subject)."""
    try:
        return title_of(Agency(value))
    except ValueError:
        return words(value)


def value_of(enum: type[Enum], text: str) -> str | None:
    """The value of `enum` that `text` names, by its title or as the value itself; None if none."""
    for member in enum:
        value = str(member.value)
        if text in (value, title_of(member)):
            return value
    return None

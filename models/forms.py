"""One typed model per form: the referral and every human step's input.

Validation errors name the field and never echo what was typed (DESIGN.md §4): use
`describe_validation_error` (from `models.errors`, and here) to turn a pydantic error into words
for a person.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from models.calendar import london_date
from models.enums import AbuseOrNeglect, Agency, Category, StepId

# Re-exported: the forms' errors are described with it.
from models.errors import describe_validation_error as describe_validation_error
from models.rules import CARE_LEAVER_MAX_AGE, LOOKED_AFTER_MAX_AGE, CaseFacts

# Clocks on different machines disagree a little; a referral stamped a minute ahead is not "future".
_CLOCK_SKEW = timedelta(minutes=5)

ExternalRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
LaRecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80,
                                              pattern=r"^[^\r\n<>]+$")]
Rationale = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _now_from(info: ValidationInfo) -> datetime:
    context = info.context or {}
    now = context.get("now")
    if not isinstance(now, datetime):
        raise ValueError("validation needs the current time in its context")
    return now


class Child(_Form):
    """A child in the referral, known only by the local authority's own record id."""

    la_record_id: LaRecordId = Field(description="The local authority's record id for the child.")
    age_years: int = Field(ge=0, le=CARE_LEAVER_MAX_AGE, description="Age in whole years.")
    looked_after: bool = Field(description="Looked after by the local authority.")
    care_leaver: bool = Field(description="A care leaver (up to and including age 24).")

    @model_validator(mode="after")
    def _status_fits_age(self) -> Self:
        if self.looked_after and self.care_leaver:
            raise ValueError("a child cannot be both looked-after and a care leaver")
        if self.looked_after and self.age_years > LOOKED_AFTER_MAX_AGE:
            raise ValueError(f"a looked-after child is at most {LOOKED_AFTER_MAX_AGE}")
        if not self.care_leaver and self.age_years > LOOKED_AFTER_MAX_AGE:
            raise ValueError(f"only a care leaver may be older than {LOOKED_AFTER_MAX_AGE}")
        return self


class Referral(_Form):
    """A referral of a serious incident or near miss to the SBU."""

    referring_agency: Agency
    external_ref: ExternalRef = Field(description="The referring agency's own reference.")
    category: Category
    abuse_or_neglect: AbuseOrNeglect
    incident_date: date
    la_aware_date: date = Field(description="When the local authority became aware.")
    referred_at: AwareDatetime = Field(description="When the SBU received the referral.")
    children: list[Child] = Field(min_length=1, max_length=4)
    agencies_involved: list[Agency] = Field(min_length=1, max_length=len(Agency))

    @model_validator(mode="after")
    def _dates_and_lists_are_possible(self, info: ValidationInfo) -> Self:
        now = _now_from(info)
        today = london_date(now)
        if self.incident_date > today:
            raise ValueError("incident_date is in the future")
        if self.la_aware_date > today:
            raise ValueError("la_aware_date is in the future")
        if self.referred_at > now + _CLOCK_SKEW:
            raise ValueError("referred_at is in the future")
        if self.la_aware_date < self.incident_date:
            raise ValueError("la_aware_date is before incident_date")
        if london_date(self.referred_at) < self.incident_date:
            raise ValueError("referred_at is before incident_date")
        if len({child.la_record_id for child in self.children}) != len(self.children):
            raise ValueError("children: the same la_record_id appears twice")
        if len(set(self.agencies_involved)) != len(self.agencies_involved):
            raise ValueError("agencies_involved: an agency appears twice")
        return self

    @property
    def referred_on(self) -> date:
        return london_date(self.referred_at)

    def facts(self) -> CaseFacts:
        return CaseFacts(
            category=self.category,
            abuse_or_neglect=self.abuse_or_neglect,
            looked_after_child=any(child.looked_after for child in self.children),
            care_leaver=any(child.care_leaver for child in self.children),
        )


def parse_referral(data: Any, *, now: datetime) -> Referral:
    """Validate a referral as submitted; `now` is the case clock's current time."""
    return Referral.model_validate(data, context={"now": now})


# -- the human steps ---------------------------------------------------------------------------

class DspDecisionForm(_Form):
    """The three Delegated Safeguarding Partners' decision on a referral."""

    sin: bool = Field(title="SIN", description="Submit a Serious Incident Notification (SIN)?")
    rapid_review: bool = Field(title="Rapid Review", description="Hold a Rapid Review?")
    rationale: Rationale = Field(title="Rationale", description="Why the DSPs decided this.")
    dsps_present: list[PersonName] = Field(min_length=3, max_length=3, title="DSPs present",
                                           description="The three DSPs who decided (LA, health, police).")
    decided_on: date = Field(title="Decided on", description="The date of the DSPs' meeting.")


class SinSubmissionForm(_Form):
    """The local authority's record of the Serious Incident Notification it submitted."""

    national_ref: Reference = Field(title="National reference",
                                    description="The national notification system's reference.")
    completed_on: date = Field(title="Submitted on", description="The date the SIN was submitted.")


class StepCompletionForm(_Form):
    """A step done on a date, with an optional reference (a meeting's minutes, a Panel receipt)."""

    completed_on: date = Field(title="Done on", description="The date it was done or received.")
    reference: Reference | None = Field(None, title="Reference",
                                        description="A reference to file (minutes, Panel receipt), if any.")


class AgencyResponseForm(_Form):
    """One agency's Rapid Review information received by the SBU."""

    agency: Agency = Field(title="Agency", description="Whose information arrived.")
    completed_on: date = Field(title="Received on",
                               description="The date the agency's information was received.")


class RetimeForm(_Form):
    """A new due date for an open item, or a new date for an anchor, and why."""

    due: date = Field(title="New date", description="The new due date (or the anchor's new date).")
    reason: Rationale = Field(title="Reason", description="Why the date moves (kept in the case store's "
                                                          "audit trail only).")


StepForm = SinSubmissionForm | StepCompletionForm | AgencyResponseForm

# The form each recordable step takes. The DSP decision has its own command.
STEP_FORMS: dict[StepId, type[StepForm]] = {
    StepId.SIN_SUBMISSION: SinSubmissionForm,
    StepId.RR_AGENCY_RESPONSES: AgencyResponseForm,
    **{step: StepCompletionForm for step in StepId
       if step not in (StepId.DSP_DECISION, StepId.SIN_SUBMISSION, StepId.RR_AGENCY_RESPONSES)},
}

"""One typed model per form: the referral and every human step's input.

Validation errors name the field and never echo what was typed (docs/architecture.md, "Data protection"): use
`describe_validation_error` (from `models.errors`, and here) to turn a pydantic error into words
for a person.
"""

from __future__ import annotations

import typing
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from models.calendar import london_date
from models.enums import (
    DSP_ROLE_TITLES,
    AbuseOrNeglect,
    ActionSource,
    Agency,
    Category,
    FamilyEngagement,
    PanelResponse,
    ReviewRoute,
    Role,
)

# Re-exported: the forms' errors are described with it.
from models.errors import describe_validation_error as describe_validation_error
from models.fields import (
    STORE_ONLY,
    ActionRef,
    Day,
    ExternalRef,
    JobTitle,
    LaRecordId,
    Moment,
    Narrative,
    PersonName,
    Place,
    Rationale,
    Reference,
    SectionKey,
    StartTime,
    StoreOnly,
    refuse_deep_nesting,
)
from models.rules import CARE_LEAVER_MAX_AGE, LOOKED_AFTER_MAX_AGE, CaseFacts

# Clocks on different machines disagree a little; a referral stamped a minute ahead is not "future".
_CLOCK_SKEW = timedelta(minutes=5)



class _Form(BaseModel):
    # Built when first used, not when imported: every `sbu` command builds the registry, whose
    # steps name their forms, and most (`sbu status`, `sbu timetable`) never validate one.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _not_nested_too_deeply(cls, data: Any) -> Any:
        refuse_deep_nesting(data, cls.model_fields)
        return data


def _now_from(info: ValidationInfo) -> datetime:
    context = info.context or {}
    now = context.get("now")
    if not isinstance(now, datetime):
        raise ValueError("validation needs the current time in its context")
    return now


class Child(_Form):
    """A child in the referral, known only by the local authority's own record id."""

    la_record_id: LaRecordId = Field(description="The local authority's record id for the child.")
    # Strict: `true` for an age, or "yes" and 1 for a yes-or-no, are a wrong type, not a value.
    age_years: int = Field(ge=0, le=CARE_LEAVER_MAX_AGE, strict=True, description="Age in whole years.")
    looked_after: bool = Field(strict=True, description="Looked after by the local authority.")
    care_leaver: bool = Field(strict=True, description="A care leaver (up to and including age 24).")

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
    incident_date: Day
    la_aware_date: Day = Field(description="When the local authority became aware.")
    referred_at: Moment = Field(description="When the SBU received the referral.")
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
        if self.incident_date < _earliest_incident(self.referred_on, self.children):
            raise ValueError("incident_date is before the oldest child in the referral was born")
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


def _earliest_incident(referred_on: date, children: list[Child]) -> date:
    """The earliest incident date the children's ages allow: before it, none of them was born. A
    year more than the oldest's age, and a year more again for an incident before birth, so only
    a date mistyped by decades (1926 for 2026) is refused."""
    years = max(child.age_years for child in children) + 2
    try:
        return referred_on.replace(year=referred_on.year - years)
    except ValueError:  # 29 February
        return referred_on.replace(year=referred_on.year - years, day=28)


def parse_referral(data: Any, *, now: datetime) -> Referral:
    """Validate a referral as submitted; `now` is the case clock's current time."""
    return Referral.model_validate(data, context={"now": now})


# -- the human steps ---------------------------------------------------------------------------
#
# One model per form. Dates are checked by the procedure against today and the step's clock; a
# form checks only what it can see by itself. Field names are never JSON Schema keywords (`type`,
# `items`, `required`, `description`, ...): the Prefect UI validates its own form values as a
# schema, and such a name makes the dashboard's form impossible to submit.


class DspSignature(_Form):
    """One Delegated Safeguarding Partner's sign-off: who signed, and whether as a deputy."""

    name: PersonName = Field(title="Name", description="Who signed for this role.")
    deputy: bool = Field(False, strict=True, title="Deputy",
                         description="Signed by a deputy acting for the role-holder.")


def _signature(role: Role) -> Any:
    return Field(title=DSP_ROLE_TITLES[role], description="Each of the three DSP roles signs once.")


Signature = Annotated[DspSignature, STORE_ONLY]


class SignedByTheDsps(_Form):
    """A form the three DSPs sign, each role exactly once (procedure, step 2)."""

    def signatures(self) -> tuple[tuple[Role, DspSignature], ...]:
        return tuple((role, getattr(self, SIGNATURE_FIELDS[role])) for role in SIGNATURE_FIELDS)


# Which field of a signed form holds each DSP role's signature.
SIGNATURE_FIELDS: dict[Role, str] = {Role.DSP_LA: "dsp_la", Role.DSP_HEALTH: "dsp_health",
                                     Role.DSP_POLICE: "dsp_police"}


class DspDecisionForm(SignedByTheDsps):
    """The three Delegated Safeguarding Partners' decision on a referral."""

    sin: bool = Field(strict=True, title="SIN", description="Submit a Serious Incident Notification (SIN)?")
    rapid_review: bool = Field(strict=True, title="Rapid Review", description="Hold a Rapid Review?")
    rationale: Rationale = Field(title="Rationale", description="Why the DSPs decided this (at least 10 "
                                                                  "characters).")
    dsp_la: Signature = _signature(Role.DSP_LA)
    dsp_health: Signature = _signature(Role.DSP_HEALTH)
    dsp_police: Signature = _signature(Role.DSP_POLICE)
    decided_on: Day = Field(title="Decided on", description="The date of the DSPs' meeting.")


class SinSubmissionForm(_Form):
    """The local authority's record of the Serious Incident Notification it submitted."""

    national_ref: Reference = Field(title="National reference",
                                    description="The national notification system's reference.")
    completed_on: Day = Field(title="Submitted on", description="The date the SIN was submitted.")


class StepCompletionForm(_Form):
    """A step done on a date, with an optional reference to file."""

    completed_on: Day = Field(title="Done on", description="The date it was done.")
    reference: Reference | None = Field(None, title="Reference",
                                        description="A reference to file (a document, a receipt), if any.")


class PartnersInformedForm(_Form):
    """The local authority told the safeguarding partners of the incident."""

    completed_on: Day = Field(title="Informed on", description="The date the partners were told.")
    reference: Reference | None = Field(None, title="Reference", description="A reference to file, if any.")


class AgencyResponseForm(_Form):
    """One agency's Rapid Review information received by the SBU (late or not)."""

    agency: Agency = Field(title="Agency", description="Whose information arrived.")
    completed_on: Day = Field(title="Received on",
                               description="The date the agency's information was received.")


class MeetingHeldForm(_Form):
    """The Rapid Review meeting was held (with every agency's information or without some)."""

    completed_on: Day = Field(title="Held on", description="The date the meeting was held.")
    reference: Reference | None = Field(None, title="Minutes reference",
                                        description="The minutes' reference, if any.")


class MeetingMoveForm(_Form):
    """The Rapid Review meeting moved to another day, time or place: everyone invited gets an update."""

    meeting_on: Day = Field(title="Meeting date", description="The day the meeting is now held.")
    start_time: StartTime = Field(title="Start time", description="London time, as HH:MM.")
    place: Place = Field(title="Place or link",
                         description="Where the meeting is held, or the link to join it (sent to everyone "
                                     "invited).")
    reason: Rationale = Field(title="Reason", description="Why the meeting moves, in at least 10 characters "
                                                          "(kept in the case store's audit trail only).")


class RapidReviewOutcomeForm(SignedByTheDsps):
    """What the Rapid Review concluded, signed off by the three DSPs (procedure, step 4)."""

    immediate_actions: Narrative = Field(title="Immediate safeguarding actions",
                                         description="What was done, or must be done now, to keep "
                                                     "children safe.")
    learning: Narrative = Field(title="Learning identified", description="What the review learned.")
    recommendation: ReviewRoute = Field(title="Recommendation",
                                        description="A local CSPR, no CSPR, or referral to the National "
                                                    "Panel for a national review.")
    rationale: Rationale = Field(title="Rationale", description="Why the review recommends this (at least 10 "
                                                                  "characters).")
    dsp_la: Signature = _signature(Role.DSP_LA)
    dsp_health: Signature = _signature(Role.DSP_HEALTH)
    dsp_police: Signature = _signature(Role.DSP_POLICE)
    decided_on: Day = Field(title="Signed off on", description="The date the DSPs signed off the outcome.")


class ReportSentForm(_Form):
    """A report sent to the National Panel (and, for a CSPR, the Secretary of State)."""

    completed_on: Day = Field(title="Sent on", description="The date the report was sent.")
    reference: Reference | None = Field(None, title="Receipt reference",
                                        description="The Panel's receipt reference, if any.")


class PanelResponseForm(_Form):
    """The National Panel's response to the Rapid Review report."""

    response: PanelResponse = Field(title="Panel's response",
                                    description="Agrees with the recommendation, disagrees, or will "
                                                "hold a national review.")
    completed_on: Day = Field(title="Received on", description="The date the response arrived.")
    reference: Reference | None = Field(None, title="Reference", description="The Panel's reference, if any.")


class ReviewersAppointedForm(_Form):
    """The independent reviewer(s) of a CSPR appointed."""

    reviewers: list[PersonName] = Field(min_length=1, max_length=3, title="Reviewers",
                                        description="The independent reviewer or reviewers.")
    completed_on: Day = Field(title="Appointed on", description="The date of the appointment.")


class ImrRequestsForm(_Form):
    """Individual Management Reviews requested from the agencies, due on the date the panel set."""

    completed_on: Day = Field(title="Requested on", description="The date the requests were sent.")
    imrs_due: Day | None = Field(None, title="IMRs due by",
                                  description="The date the review panel set; if none, the "
                                              "partnership's default clock.")
    agencies: list[Agency] | None = Field(None, title="Agencies",
                                          description="Who is asked; if none, every involved agency.")

    @model_validator(mode="after")
    def _due_after_the_request(self) -> Self:
        if self.imrs_due is not None and self.imrs_due <= self.completed_on:
            raise ValueError("imrs_due must be after completed_on")
        if self.agencies is not None and len(set(self.agencies)) != len(self.agencies):
            raise ValueError("agencies: an agency appears twice")
        return self


class ImrReceivedForm(_Form):
    """One agency's IMR received, checked section by section against the partnership's template.
    The IMR itself stays in the agency's secure channel: nothing of its content is stored here."""

    agency: Agency = Field(title="Agency", description="Whose IMR arrived.")
    completed_on: Day = Field(title="Received on", description="The date the IMR (or the rest of it) "
                                                                "arrived.")
    missing_sections: list[SectionKey] = Field(default_factory=list, max_length=20,
                                               title="Sections missing",
                                               description="Each section of the partnership's template "
                                                           "the IMR lacks, as the IMR request named them "
                                                           "(e.g. chronology, lessons learned); none if "
                                                           "it is complete.")

    @model_validator(mode="after")
    def _each_section_once(self) -> Self:
        if len(set(self.missing_sections)) != len(self.missing_sections):
            raise ValueError("missing_sections: a section appears twice")
        return self


class FamilyEngagementForm(_Form):
    """How the family was engaged in the CSPR (Working Together: where appropriate)."""

    engagement: FamilyEngagement = Field(title="Family engagement",
                                         description="Engaged, declined, or not appropriate.")
    reason: Rationale = Field(title="Reason",
                              description="Why, in a sentence or two (at least 10 characters).")
    completed_on: Day = Field(title="Recorded on", description="The date it was settled.")


class PublicationForm(_Form):
    """The CSPR report published."""

    completed_on: Day = Field(title="Published on", description="The date the report was published.")
    reference: Reference | None = Field(None, title="Reference",
                                        description="The publication's reference, if any.")


class PlannedPublicationForm(_Form):
    """The CSPR's planned publication date set or moved: the report to the Panel follows it."""

    planned_on: Day = Field(title="Planned publication date", description="The new planned date.")
    reason: Rationale = Field(title="Reason", description="Why the date moves, in at least 10 characters "
                                                          "(kept in the case store's audit trail only).")


class ActionForm(_Form):
    """An action added to the case's action plan, from the Rapid Review or the CSPR."""

    source: ActionSource = Field(title="From", description="The review the action comes from.")
    agency: Agency = Field(title="Owning agency", description="The agency that owns the action.")
    owner_role: JobTitle = Field(title="Owner's role", description="Who in the agency owns it, by job title.")
    summary: Narrative = Field(title="Action", description="What is to be done.")
    due: Day = Field(title="Due by", description="The date the action is due.")


class ActionProgressForm(_Form):
    """A progress note on an open action."""

    action: ActionRef = Field(title="Action", description="Which action (a1, a2, ...).")
    note: Narrative = Field(title="Progress", description="What has happened since the last note.")
    evidence_ref: Reference | None = Field(None, title="Evidence reference",
                                           description="A reference to the evidence so far, if any.")
    noted_on: Day = Field(title="Noted on", description="The date of the note.")


class ActionClosedForm(_Form):
    """An action of the plan completed, with the reference of its evidence."""

    action: ActionRef = Field(title="Action", description="Which action (a1, a2, ...).")
    evidence_ref: Reference = Field(title="Evidence reference",
                                    description="Where the evidence that it is done is filed.")
    completed_on: Day = Field(title="Closed on", description="The date the action was completed.")


class RetimeForm(_Form):
    """A new due date for an open item, or a new date for an anchor, and why."""

    due: Day = Field(title="New date", description="The new due date (or the anchor's new date).")
    reason: Rationale = Field(title="Reason", description="Why the date moves (kept in the case store's "
                                                          "audit trail only).")


def store_only_fields(form: type[BaseModel]) -> frozenset[str]:
    """The fields of `form` whose values stay in the case store's record of it: marked
    `STORE_ONLY` themselves, or holding something that is (a list of names, a signature)."""
    return frozenset(name for name, info in form.model_fields.items()
                     if any(isinstance(item, StoreOnly) for item in info.metadata)
                     or _holds_store_only(info.annotation))


def _holds_store_only(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return any(isinstance(item, StoreOnly) for item in metadata) or _holds_store_only(base)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(store_only_fields(annotation))
    return any(_holds_store_only(arg) for arg in typing.get_args(annotation))

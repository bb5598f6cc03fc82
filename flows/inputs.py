"""The forms people fill in on the Prefect dashboard: one `RunInput` per human step.

Each mirrors a form in `models.forms` and is checked against it (and the path rules) when read, so
the dashboard and `sbu` enforce the same rules. Free text typed here is copied into the case store
and the run input deleted from Prefect once read (DESIGN.md §4).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect.input import RunInput
from pydantic import Field

from models.enums import Agency

# What `sbu` sends when it resumes a run after recording the step in the case store itself: the
# form's schema must be met, but nothing personal goes to Prefect and the flow reads the store.
RECORDED_IN_STORE = "Recorded with the sbu command; the details are in the case store."


class DspDecisionInput(RunInput):
    sin: bool = Field(description="Submit a Serious Incident Notification (SIN)?")
    rapid_review: bool = Field(description="Hold a Rapid Review?")
    rationale: str = Field(description="Why the DSPs decided this. Copied to the case store and "
                                       "removed from Prefect once read.")
    dsps_present: list[str] = Field(description="The three DSPs who decided (LA, health, police).")
    decided_on: date = Field(description="The date of the DSPs' meeting.")
    recorded_by: str = Field(description="Your name, for the audit trail.")


class SinSubmissionInput(RunInput):
    national_ref: str = Field(description="The national notification system's reference.")
    completed_on: date = Field(description="The date the SIN was submitted.")
    recorded_by: str = Field(description="Your name, for the audit trail.")


RapidReviewStepName = Literal["rr-agency-responses", "rr-meeting", "rr-report-to-panel"]


class RapidReviewStepInput(RunInput):
    step: RapidReviewStepName = Field(description="The Rapid Review step to record.")
    completed_on: date = Field(description="The date it was done or received.")
    agency: Agency | None = Field(None, description="rr-agency-responses: whose information arrived.")
    reference: str | None = Field(None, description="A reference to file (minutes, Panel receipt).")
    recorded_by: str = Field(description="Your name, for the audit trail.")

"""A notified case from its referral to its last action closed, as the desk's forms record it: each
form once with a value the server refuses and once right, on the case day it happens. Shared by the
desk's in-process tests (`test_desk_forms.py`) and its browser test (`test_desk_browser.py`).

Each wrong value is one the browser's own checks let through (a date before the step's clock
started, a reason padded with spaces to its length, a date more than ten years ahead, a decision the
procedure does not allow), so the server's refusal is what a person meets, in either test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models.clock import FixedClock

Values = dict[str, str | list[str]]

# Who records what (the people directory in `PEOPLE_TOML`): the SBU officer most things, a DSP the
# DSPs' decision and the Rapid Review's outcome, the local authority its notification.
SBU, DSP, LA = "sbu-officer", "dlee", "kshaw"

PEOPLE_TOML = """
[people.sbu-officer]
name = "Sam Officer"
roles = ["sbu"]

[people.dlee]
name = "Dana Lee"
roles = ["dsp-la"]

[people.spatel]
name = "Sam Patel"
roles = ["dsp-health"]

[people.amorgan]
name = "Alex Morgan"
roles = ["dsp-police"]

[people.jbrook]
name = "Jo Brook"
roles = ["sbu"]
deputy_for = ["dsp-police"]

[people.kshaw]
name = "Kim Shaw"
roles = ["local-authority"]

[people.hlead]
name = "Hal Lead"
roles = ["agency:health"]
"""

SIGNED = {"dsp_la.name": "Dana Lee", "dsp_health.name": "Sam Patel", "dsp_police.name": "Alex Morgan"}


@dataclass(frozen=True)
class Submission:
    """One form of the walk: on which case day, by whom, its right values, and the values that
    make the server refuse it (merged over the right ones), with where the refusal is shown (an
    input's name, or None for the top of the form)."""

    on: date
    who: str
    key: str
    right: Values
    wrong: Values
    wrong_at: str | None
    # Words the refusal must say.
    says: str = ""
    # A record that is accepted but leaves its item open (an IMR with a section missing).
    partial: bool = False

    @property
    def refused(self) -> Values:
        return {**self.right, **self.wrong}


REFERRAL: Values = {
    "referring_agency": "police", "external_ref": "POL-2027-0011", "category": "serious-harm",
    "abuse_or_neglect": "suspected", "incident_date": "2027-01-10", "la_aware_date": "2027-01-10",
    "referred_at": "2027-01-11T09:00", "children.0.la_record_id": "LA-000123", "children.0.age_years": "7",
    "children.0.looked_after": "no", "children.0.care_leaver": "no",
    "agencies_involved": ["police", "health", "education"],
}
REFERRAL_WRONG: Values = {"la_aware_date": "2027-01-09"}
REFERRAL_DAY = date(2027, 1, 11)
CASE_REF = "SR-2027-0001"
PADDED = "   short    "  # twelve characters to the browser, five to the form once trimmed
FAR = "2040-01-01"  # more than ten years ahead
BEFORE_1900 = "1899-12-31"


def _d(text: str) -> date:
    return date.fromisoformat(text)


WALK: tuple[Submission, ...] = (
    Submission(_d("2027-01-11"), DSP, "dsp-decision",
               {"sin": "yes", "rapid_review": "yes", "rationale": "Abuse suspected; criteria met.", **SIGNED,
                "decided_on": "2027-01-11"},
               {"rapid_review": "no"}, None, says="Rapid Review is required"),
    Submission(_d("2027-01-11"), LA, "sin-submission",
               {"national_ref": "CSIN-2027-0011", "completed_on": "2027-01-11"},
               {"completed_on": "2027-01-08"}, "completed_on", says="before the step's clock started"),
    # The local authority's call log shows it heard on the 11th: telling the partners follows.
    Submission(_d("2027-01-12"), SBU, "new-anchor-date",
               {"anchor": "la-aware", "due": "2027-01-11", "reason": "The call log shows the 11th."},
               {"reason": PADDED}, "reason", says="at least 10 characters"),
    Submission(_d("2027-01-12"), LA, "partners-informed",
               {"completed_on": "2027-01-12", "reference": "LA-NOTE-7"},
               {"completed_on": "2027-01-09"}, "completed_on", says="before the step's clock started"),
    Submission(_d("2027-01-12"), SBU, "rr-agency-responses",
               {"agency": "police", "completed_on": "2027-01-12"},
               {"completed_on": "2027-01-10"}, "completed_on"),
    Submission(_d("2027-01-14"), SBU, "rr-agency-responses",
               {"agency": "health", "completed_on": "2027-01-14"},
               {"completed_on": BEFORE_1900}, "completed_on", says="1900 to 2199"),
    Submission(_d("2027-01-14"), SBU, "rr-meeting-moved",
               {"meeting_on": "2027-01-22", "start_time": "14:00", "place": "Town Hall, Room 3",
                "reason": "The Panel chair is away on the 21st."},
               {"reason": PADDED}, "reason", says="at least 10 characters"),
    Submission(_d("2027-01-22"), SBU, "rr-agency-responses",
               {"agency": "education", "completed_on": "2027-01-22"},
               {"completed_on": "2027-01-10"}, "completed_on"),
    Submission(_d("2027-01-22"), SBU, "rr-meeting",
               {"completed_on": "2027-01-22", "reference": "MIN-22"},
               {"completed_on": "2027-01-10"}, "completed_on"),
    Submission(_d("2027-01-22"), DSP, "rr-outcome",
               {"immediate_actions": "GP alerted.", "learning": "Information was not shared at discharge.",
                "recommendation": "local-cspr", "rationale": "Systemic learning across agencies.", **SIGNED,
                "decided_on": "2027-01-22"},
               {"decided_on": "2027-01-21"}, "decided_on"),
    Submission(_d("2027-01-25"), SBU, "rr-report-to-panel",
               {"completed_on": "2027-01-25", "reference": "PANEL-0042"},
               {"completed_on": "2027-01-08"}, "completed_on"),
    Submission(_d("2027-01-27"), SBU, "rr-panel-response",
               {"response": "agree", "completed_on": "2027-01-27"},
               {"completed_on": "2027-01-22"}, "completed_on"),
    Submission(_d("2027-01-27"), SBU, "action-added",
               {"source": "rapid-review", "agency": "health", "owner_role": "Named Nurse",
                "summary": "Audit the discharge checklist", "due": "2027-03-31"},
               {"due": FAR}, "due", says="more than 10 years ahead"),
    Submission(_d("2027-01-27"), SBU, "rr-action-plan",
               {"completed_on": "2027-01-27"}, {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-02-01"), SBU, "cspr-reviewer-appointed",
               {"reviewers": ["Dr Jo Reviewer", ""], "completed_on": "2027-02-01"},
               {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-02-03"), SBU, "cspr-terms-of-reference",
               {"completed_on": "2027-02-03", "reference": "TOR-1"},
               {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-02-03"), SBU, "cspr-imr-requests",
               {"completed_on": "2027-02-03", "imrs_due": "2027-03-03", "agencies": ["police", "health",
                                                                                     "education"]},
               {"imrs_due": "2027-02-03"}, "imrs_due", says="after"),
    Submission(_d("2027-02-10"), SBU, "cspr-family-engagement",
               {"engagement": "engaged", "reason": "The family asked to meet the reviewer.",
                "completed_on": "2027-02-10"},
               {"reason": PADDED}, "reason"),
    Submission(_d("2027-02-20"), SBU, "cspr-imr",
               {"agency": "police", "completed_on": "2027-02-20", "missing_sections": ["chronology"]},
               {"completed_on": "2027-02-02"}, "completed_on", partial=True),
    Submission(_d("2027-02-25"), SBU, "cspr-imr",
               {"agency": "police", "completed_on": "2027-02-25"},
               {"completed_on": BEFORE_1900}, "completed_on"),
    Submission(_d("2027-02-25"), SBU, "cspr-imr",
               {"agency": "health", "completed_on": "2027-02-25"},
               {"completed_on": "2027-02-02"}, "completed_on"),
    Submission(_d("2027-02-26"), SBU, "cspr-imr",
               {"agency": "education", "completed_on": "2027-02-26"},
               {"completed_on": "2027-02-02"}, "completed_on"),
    Submission(_d("2027-03-15"), SBU, "cspr-draft-report",
               {"completed_on": "2027-03-15"}, {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-04-15"), SBU, "cspr-final-report",
               {"completed_on": "2027-04-15"}, {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-04-15"), SBU, "cspr-publication-moved",
               {"planned_on": "2027-07-30", "reason": "The inquest is set for July."},
               {"planned_on": FAR}, "planned_on", says="more than 10 years ahead"),
    Submission(_d("2027-04-16"), SBU, "new-due-date",
               {"item": "action:a1", "due": "2027-04-30", "reason": "The audit waits for the new policy."},
               {"due": FAR}, "due", says="more than 10 years ahead"),
    Submission(_d("2027-07-20"), SBU, "cspr-report-to-panel",
               {"completed_on": "2027-07-20", "reference": "SOS-2027-9"},
               {"completed_on": BEFORE_1900}, "completed_on"),
    Submission(_d("2027-07-30"), SBU, "cspr-publication",
               {"completed_on": "2027-07-30", "reference": "PUB-2027-1"},
               {"completed_on": "2027-01-21"}, "completed_on"),
    Submission(_d("2027-07-30"), SBU, "action-added",
               {"source": "cspr", "agency": "education", "owner_role": "Head of Safeguarding",
                "summary": "Train staff on information sharing at discharge", "due": "2027-09-30"},
               {"due": FAR}, "due"),
    Submission(_d("2027-08-02"), SBU, "cspr-action-plan",
               {"completed_on": "2027-08-02"}, {"completed_on": "2027-07-29"}, "completed_on"),
    Submission(_d("2027-08-02"), SBU, "action-progress",
               {"action": "a2", "note": "Training booked for September.", "evidence_ref": "TRN-1",
                "noted_on": "2027-08-02"},
               {"note": "  x    "}, "note", says="at least 3 characters"),
    Submission(_d("2027-08-03"), SBU, "action",
               {"action": "a1", "evidence_ref": "AUD-7", "completed_on": "2027-08-03"},
               {"completed_on": "2027-01-26"}, "completed_on"),
    Submission(_d("2027-09-20"), SBU, "action",
               {"action": "a2", "evidence_ref": "TRN-9", "completed_on": "2027-09-20"},
               {"completed_on": BEFORE_1900}, "completed_on"),
)


@dataclass
class CaseDay:
    """Moves a fixed clock to noon (UTC) of a case day."""

    clock: FixedClock
    days: list[date] = field(default_factory=list)

    def to(self, day: date) -> None:
        target = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        self.clock.advance(target - self.clock.now())
        self.days.append(day)


def start_clock() -> FixedClock:
    return FixedClock(datetime(2027, 1, 11, 12, 0, tzinfo=UTC))


def as_form(values: Values, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Values as a form post: a list for a name posted more than once."""
    return {**values, **(extra or {})}

"""Open cases as a partnership's tracker holds them on the day it adopts the system: one timeline
of a notified case to its open action plan, cut at every stage, with a near miss, a looked-after
child's death and a care leaver's among them. Each case is the JSON `sbu import` takes.

The timeline's entries are days after the referral; a case referred `age` days before `today` has
those of its entries already past (the day before `today` at the latest).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

SIGNED: dict[str, Any] = {"dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
                          "dsp_police": {"name": "Alex Morgan", "deputy": True}}
AGENCIES = ["police", "health", "education"]


def _timeline(*, near_miss: bool = False, sin_only: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(days after the referral, entry) in the procedure's order for one day."""
    decision = {"step": "dsp-decision", "by": "Dana Lee", "sin": not near_miss, "rapid_review": not sin_only,
                "rationale": "Criteria met on the facts known.", **SIGNED}
    entries: list[tuple[int, dict[str, Any]]] = [(1, decision)]
    if not near_miss:
        entries += [(2, {"step": "sin-submission", "national_ref": "CSIN-2027-0001"}),
                    (3, {"step": "partners-informed"})]
    if sin_only:
        return entries
    entries += [(6, {"step": "rr-agency-responses", "agency": "police"}),
                (7, {"step": "rr-agency-responses", "agency": "health"}),
                (12, {"step": "rr-meeting", "reference": "MIN-1"}),
                (13, {"step": "rr-outcome", "immediate_actions": "A safety plan is in place.",
                      "learning": "Information sharing across agencies.", "recommendation": "local-cspr",
                      "rationale": "Learning for the whole partnership.", **SIGNED}),
                (14, {"act": "action-added", "source": "rapid-review", "agency": "health",
                      "owner_role": "Named nurse", "summary": "Review the referral pathway.", "due+": 60}),
                (15, {"step": "cspr-reviewer-appointed", "reviewers": ["Jo Reviewer"]}),
                (19, {"step": "rr-agency-responses", "agency": "education"})]
    if not near_miss:
        entries += [(16, {"step": "rr-report-to-panel", "reference": "NP-1"}),
                    (22, {"step": "rr-panel-response", "response": "agree"})]
    entries += [(22, {"step": "rr-action-plan"}),
                (24, {"step": "cspr-imr-requests", "imrs_due+": 56}),
                (27, {"step": "cspr-terms-of-reference"}),
                (45, {"step": "cspr-family-engagement", "engagement": "engaged",
                      "reason": "The family wished to take part."}),
                (56, {"step": "cspr-imr", "agency": "police"}),
                (56, {"step": "cspr-imr", "agency": "health", "missing_sections": ["chronology"]}),
                (58, {"step": "cspr-imr", "agency": "education"}),
                (59, {"step": "action", "action": "a1", "evidence_ref": "EV-1"}),
                (63, {"step": "cspr-imr", "agency": "health"}),
                (100, {"step": "cspr-draft-report"}),
                (125, {"step": "cspr-final-report"}),
                (150, {"step": "cspr-report-to-panel", "reference": "NP-2"}),
                (160, {"step": "cspr-publication", "reference": "PUB-1"}),
                (165, {"act": "action-added", "source": "cspr", "agency": "education",
                       "owner_role": "Head teacher", "summary": "Train staff on the pathway.", "due+": 260}),
                (170, {"step": "cspr-action-plan"})]
    return entries


def _entry(referred: date, days: int, raw: dict[str, Any]) -> dict[str, Any]:
    entry = copy.deepcopy(raw)
    on = referred + timedelta(days=days)
    for key in [key for key in entry if key.endswith("+")]:
        entry[key[:-1]] = (referred + timedelta(days=entry.pop(key))).isoformat()
    if "act" in entry:
        entry["on"] = on.isoformat()
    elif entry["step"] in ("dsp-decision", "rr-outcome"):
        entry["decided_on"] = on.isoformat()
    else:
        entry["completed_on"] = on.isoformat()
    return entry


def open_case(number: int, *, today: date, age: int, category: str = "serious-harm",
              looked_after: bool = False, care_leaver: bool = False, near_miss: bool = False,
              sin_only: bool = False, abuse: str = "suspected") -> dict[str, Any]:
    """A case referred `age` days before `today`, with the history it has by the day before."""
    referred = today - timedelta(days=age)
    child_age = 19 if care_leaver else 9
    referral = {
        "referring_agency": "children-social-care", "external_ref": f"TRK-{number:04d}",
        "category": "near-miss" if near_miss else category, "abuse_or_neglect": abuse,
        "incident_date": (referred - timedelta(days=2)).isoformat(),
        "la_aware_date": (referred - timedelta(days=1)).isoformat(),
        "referred_at": f"{referred.isoformat()}T10:00:00+00:00",
        "children": [{"la_record_id": f"LA-{number:05d}", "age_years": child_age,
                      "looked_after": looked_after, "care_leaver": care_leaver}],
        "agencies_involved": AGENCIES,
    }
    history = [_entry(referred, days, raw) for days, raw in _timeline(near_miss=near_miss, sin_only=sin_only)
               if days < age]
    return {"referral": referral, "recorded_by": "Tracker Keeper", "history": history}


# The ages (days since the referral) that put a case at each stage of the timeline.
AGES = (1, 2, 3, 5, 9, 13, 14, 17, 20, 23, 26, 40, 50, 57, 60, 70, 110, 140, 155, 175, 200)


def twenty_five_cases(today: date) -> list[dict[str, Any]]:
    """25 open cases at every stage, from awaiting the DSPs' decision to an open action plan: a
    notified case at each of `AGES`, then a near miss, a looked-after child's death, a care leaver's
    death (notified only) and a near miss early in its Rapid Review."""
    cases = [open_case(n, today=today, age=age) for n, age in enumerate(AGES, start=1)]
    cases += [open_case(22, today=today, age=30, near_miss=True),
              open_case(23, today=today, age=20, category="death", looked_after=True, abuse="not-suspected"),
              open_case(24, today=today, age=2, category="death", care_leaver=True, sin_only=True,
                        abuse="not-suspected"),
              open_case(25, today=today, age=8, near_miss=True)]
    return cases

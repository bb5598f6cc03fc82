"""The Markdown shown above each form on the dashboard: what is asked, by when, and the rule.
Built from the case reference, step ids, dates and rule text only: never personal data."""

from __future__ import annotations

from models.calendar import end_of_london_day
from models.enums import StepId
from models.rules import CaseFacts, notification_duty
from models.timetable import STEP_RULES
from sbu.queries import CaseView


def _due_line(view: CaseView, step: StepId) -> str:
    row = next((s for s in view.steps if s.step is step), None)
    if row is None:
        return ""
    deadline = end_of_london_day(row.due)
    return (f"**Due:** by the end of {row.due:%A %d %B %Y} (London time; "
            f"{deadline:%Y-%m-%d %H:%M} UTC). Rule: {row.rule} ({STEP_RULES[step].source}).")


def dsp_decision(view: CaseView, facts: CaseFacts, refusal: str | None) -> str:
    duty = notification_duty(facts)
    lines = [
        f"## DSP decision for case {view.case_ref}",
        "",
        "The three Delegated Safeguarding Partners decide whether the local authority submits a "
        "**Serious Incident Notification** and whether a **Rapid Review** is held.",
        "",
        _due_line(view, StepId.DSP_DECISION),
        "",
        f"**What the procedure says for this referral:** {duty.reason}.",
        "",
        "- A looked-after child's death must be notified, whatever the cause.",
        "- A care leaver's death (up to 24) should be notified; no Rapid Review is required.",
        "- A near miss is not notified; the DSPs decide on a Rapid Review.",
        "- Once a SIN is submitted, a Rapid Review follows unless the criteria are not met.",
        "",
        "The rationale is copied to the case store and removed from Prefect once read.",
    ]
    if refusal:
        lines += ["", f"> **The previous answer was not recorded:** {refusal}"]
    return "\n".join(lines)


def sin_submission(view: CaseView, refusal: str | None) -> str:
    lines = [
        f"## SIN submitted for case {view.case_ref}",
        "",
        "Record the Serious Incident Notification the local authority submitted through the "
        "Child Safeguarding Incident Notification System: its reference and date.",
        "",
        _due_line(view, StepId.SIN_SUBMISSION),
    ]
    if refusal:
        lines += ["", f"> **The previous answer was not recorded:** {refusal}"]
    return "\n".join(lines)


def rapid_review(view: CaseView, refusal: str | None) -> str:
    lines = [f"## Rapid Review for case {view.case_ref}", "",
             f"Agency information received: {view.agencies_responded} of {view.agencies_total}.", ""]
    for step in (StepId.RR_AGENCY_RESPONSES, StepId.RR_MEETING, StepId.RR_REPORT_TO_PANEL):
        row = next((s for s in view.steps if s.step is step), None)
        if row is not None:
            lines.append(f"- `{step.value}`: {row.state.value}, due {row.due:%a %d %b %Y}")
    if refusal:
        lines += ["", f"> **The previous answer was not recorded:** {refusal}"]
    return "\n".join(lines)


def sin_pack(view: CaseView, facts: CaseFacts) -> str:
    """What the national notification form needs, and what the case store already holds."""
    duty = notification_duty(facts)
    return "\n".join([
        f"# SIN pack for case {view.case_ref}",
        "",
        _due_line(view, StepId.SIN_SUBMISSION),
        "",
        f"Notification duty: **{duty.duty.value}**: {duty.reason}.",
        "",
        "| The national form asks for | Where it is |",
        "|---|---|",
        f"| Incident category | in the case store: {view.category.value} |",
        "| Date of the incident, date the LA became aware | in the case store (anchor dates) |",
        "| The child(ren): LA record id, age, legal status | in the case store; not copied here |",
        "| Agencies involved | in the case store |",
        "| Summary of the incident | the LA's own record: never held in this system |",
        "| Abuse or neglect known or suspected | in the case store |",
        "| Immediate safeguarding actions | the LA's own record |",
        "",
        "Record the submission with `sbu record CASE sin-submission --national-ref REF` or on the "
        "dashboard form of this run.",
    ])

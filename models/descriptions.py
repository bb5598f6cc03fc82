"""The Markdown shown above each dashboard form, and the case's artifacts: what is asked, by when,
and under which rule, derived from the same rule objects the procedure applies (`StepRule`,
`PathRule`), never retyped. Built from the case reference, step ids, dates and rule text only:
never personal data (docs/architecture.md, "Data protection").
"""

from __future__ import annotations

from models.calendar import end_of_london_day
from models.registry import Wait
from models.rules import notification_duty
from models.state import CaseState, ItemState
from models.timetable import StepRule

# Under a refusal: what the form asked again holds of the answer refused.
REFILLED = ("Put it right and submit again. What you chose (dates, options, yes or no) is filled in "
            "again; text you typed is not kept, so type it again.")


def due_line(item: ItemState, rule: StepRule) -> str:
    """When `item` is due, in London and UTC, and the rule that made the date, with its source."""
    deadline = end_of_london_day(item.due)
    return (f"**Due:** by the end of {item.due:%A %d %B %Y} (London time; "
            f"{deadline:%Y-%m-%d %H:%M} UTC). Rule: {item.rule} ({rule.source}).")


def wait_items(wait: Wait, state: CaseState) -> list[tuple[ItemState, StepRule]]:
    """The case's items this wait answers, with their rules, in the wait's order."""
    rows: list[tuple[ItemState, StepRule]] = []
    for spec in wait.items:
        rows += [(item, spec.rule) for item in state.items_of(spec.step)]
    return rows


def open_item_lines(wait: Wait, state: CaseState) -> list[str]:
    """A bullet for each open item `wait` answers: its title (and subject), when it is due and
    under which rule."""
    lines = []
    for item, rule in wait_items(wait, state):
        if item.is_open:
            subject = f" ({item.subject})" if item.subject else ""
            lines.append(f"- **{item.title}**{subject}: " + due_line(item, rule).removeprefix("**Due:** "))
    return lines


def form_markdown(wait: Wait, state: CaseState, refusal: str | None) -> str:
    """The whole description of `wait`'s form for this case: why the previous answer was not
    recorded, first, where a person looks (if it was refused), then its title, and the wait's own
    lines (or what it asks and each open item's due line)."""
    lines: list[str] = []
    if refusal:
        lines += [f"> **Your answer was not recorded.** {refusal}", ">",
                  f"> {REFILLED}", ""]
    lines += [f"## {wait.title} for case {state.case_ref}", ""]
    if wait.describe is not None:
        lines += wait.describe(state, wait)
    else:
        lines += [wait.asks, ""] if wait.asks else []
        for item, rule in wait_items(wait, state):
            if item.is_open:
                lines += [f"**{rule.title}**" + (f" ({item.subject})" if item.subject else ""),
                          "", due_line(item, rule), ""]
    return "\n".join(lines).rstrip() + "\n"


def sin_pack(state: CaseState, sin_rule: StepRule) -> str:
    """What the national notification form needs, and what the case store already holds."""
    duty = notification_duty(state.facts)
    item = state.item(sin_rule.step)
    lines = [f"# SIN pack for case {state.case_ref}", ""]
    if item is not None:
        lines += [due_line(item, sin_rule), ""]
    return "\n".join([
        *lines,
        f"Notification duty: **{duty.duty.value}**: {duty.reason}.",
        "",
        "| The national form asks for | Where it is |",
        "|---|---|",
        f"| Incident category | in the case store: {state.category.value} |",
        "| Date of the incident, date the LA became aware | in the case store (anchor dates) |",
        "| The child(ren): LA record id, age, legal status | in the case store; not copied here |",
        "| Agencies involved | in the case store |",
        "| Summary of the incident | the LA's own record: never held in this system |",
        "| Abuse or neglect known or suspected | in the case store |",
        "| Immediate safeguarding actions | the LA's own record |",
        "",
        f"Record the submission with `sbu record CASE {sin_rule.step} --national-ref REF` or on the "
        "dashboard form of this run.",
    ])

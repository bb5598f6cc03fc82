"""The constrained kinds of text a form may hold, and the mark on those that stay in the case store.

Kept apart from the forms so that settings (which name a meeting's place and the IMR template's
sections) can use them without building every form.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, StringConstraints

ExternalRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
LaRecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")]


class StoreOnly:
    """Marks a field holding a person's own words or a person's name. Its value is kept in the case
    store's record of the form (`records`) and nowhere else: not in an item's structured details,
    not in Prefect once read, never in an email or a log (DESIGN.md §4)."""

    def __repr__(self) -> str:
        return "STORE_ONLY"


STORE_ONLY = StoreOnly()

PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80,
                                              pattern=r"^[^\r\n<>]+$"), STORE_ONLY]
Rationale = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000),
                      STORE_ONLY]
# What people write about a case: the learning, the immediate actions, an action and its progress.
Narrative = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000),
                      STORE_ONLY]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
# A job title such as "Head of Safeguarding": who in the agency owns an action.
JobTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80,
                                            pattern=r"^[A-Za-z][A-Za-z0-9 ,.'&()/-]*$"), STORE_ONLY]
# A meeting's room or link: logistics, sent to the attendees in the invitation.
Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200,
                                         pattern=r"^[^\x00-\x1f\x7f<>]+$")]
StartTime = Annotated[str, StringConstraints(strip_whitespace=True,
                                             pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
def _section_key(value: object) -> object:
    # "Lessons learned" and "lessons_learned" as typed on a form are the template's
    # `lessons-learned`.
    if isinstance(value, str):
        return "-".join(value.strip().lower().replace("_", " ").split())
    return value


# An IMR template's section, named as the partnership's settings name it (e.g. `lessons-learned`).
SectionKey = Annotated[str, BeforeValidator(_section_key),
                       StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
# An action of the plan: a1, a2, ...
ActionRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^a[1-9][0-9]{0,3}$")]



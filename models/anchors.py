"""The dates the procedure's clocks count from (anchors), as declared: what each is called, and
whether it is a date of the case or each item's own.

A date of the case (the DSPs' decision, the SIN's submission, the CSPR's commissioning) is one row
of the store's `case_anchors`, set by the rule that records it (`models.effects.SetAnchor`) and
moved by a person with a reason (`sbu retime CASE ANCHOR`); every open item counted from it
follows. An item's own anchor (the day an action was added) is kept on the item (`items.anchor_on`)
and is moved by re-timing the item.

Each anchor is declared (`AnchorSpec`) by the process whose rules set it, in its `Process.anchors`
beside the steps that count from it: the referral's dates, the decision and the notification by
the case (`models.processes.case`), the meeting and the outcome by the Rapid Review, and so on. A
partnership's process declares its own the same way. The registry knows them all, and refuses an
anchor declared twice and a step counted from an anchor no process declares. The anchor ids
themselves are `models.enums.Anchor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.enums import Anchor


class AnchorScope(StrEnum):
    """Whose date an anchor is."""

    CASE = "case"  # one date of the case, kept in `case_anchors`
    ITEM = "item"  # each item's own (`items.anchor_on`), such as the day an action was added


@dataclass(frozen=True, slots=True)
class AnchorSpec:
    """One anchor: its id, a title for people, whose date it is, and whether a person may move it."""

    anchor: Anchor
    title: str
    scope: AnchorScope = AnchorScope.CASE
    # The referral's own date is fixed: a wrong one is a new referral, not a correction.
    movable: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.anchor, Anchor):
            raise TypeError(f"an anchor is declared with Anchor({self.anchor!r})")
        if not self.title or not self.title.isprintable() or len(self.title) > 100:
            raise ValueError(f"anchor {self.anchor}: its title is one printable line of up to 100 characters")

    @property
    def of_case(self) -> bool:
        return self.scope is AnchorScope.CASE


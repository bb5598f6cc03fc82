"""The dates the procedure's clocks count from (anchors), declared: what each is called, and whether
it is a date of the case or each item's own.

A date of the case (the DSPs' decision, the SIN's submission, the CSPR's commissioning) is one row
of the store's `case_anchors`, set by the rule that records it (`models.effects.SetAnchor`) and
moved by a person with a reason (`sbu retime CASE ANCHOR`); every open item counted from it
follows. An item's own anchor (the day an action was added) is kept on the item (`items.anchor_on`)
and is moved by re-timing the item.

The procedure's own anchors are declared here; a partnership's process declares its own in its
`Process.anchors` (`models.registry`), and the registry refuses a step counted from an anchor no
one declares. The anchor ids themselves are `models.enums.Anchor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
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


# The procedure's own anchors, in the order a case usually reaches them.
PROCEDURE_ANCHORS: tuple[AnchorSpec, ...] = (
    AnchorSpec(Anchor.REFERRAL_RECEIVED, "Referral received by the SBU", movable=False),
    AnchorSpec(Anchor.LA_AWARE, "Local authority became aware"),
    AnchorSpec(Anchor.DECISION, "DSPs' decision"),
    AnchorSpec(Anchor.NOTIFICATION, "Notification (the SIN, or for a near miss the decision)"),
    AnchorSpec(Anchor.SIN_SUBMITTED, "Serious Incident Notification submitted"),
    AnchorSpec(Anchor.MEETING, "Rapid Review meeting held"),
    AnchorSpec(Anchor.RR_OUTCOME, "Rapid Review outcome signed off"),
    AnchorSpec(Anchor.RR_REPORT_SENT, "Rapid Review sent to the National Panel"),
    AnchorSpec(Anchor.CSPR_COMMISSIONED, "CSPR commissioned"),
    AnchorSpec(Anchor.PLANNED_PUBLICATION, "CSPR's planned publication"),
    AnchorSpec(Anchor.IMRS_REQUESTED, "IMRs requested"),
    AnchorSpec(Anchor.CSPR_PUBLISHED, "CSPR published"),
    AnchorSpec(Anchor.ACTION_ADDED, "Action added to the plan", scope=AnchorScope.ITEM),
)


def referral_anchors(*, referred_on: date, la_aware_on: date) -> dict[Anchor, date]:
    """The anchors a referral brings with it, set when the case is stored. The referral itself
    keeps what was referred (`cases.referred_on`, `cases.la_aware_on`); the anchor is the date the
    clocks count from, which a person may correct (the local authority's awareness) with a reason."""
    return {Anchor.REFERRAL_RECEIVED: referred_on, Anchor.LA_AWARE: la_aware_on}

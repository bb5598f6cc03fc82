"""How the partnership runs its reviews, where the procedure leaves it to the partnership: the
sections its IMR template requires, and the Rapid Review meeting's usual time and place.

Settings (`SBU_REVIEWS__<NAME>`) override the defaults; nothing here reads them itself.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.fields import Place, SectionKey

# The sections an IMR covers (procedure, "What is an Individual Management Review?"): a
# chronology, the analysis of key decisions with missed opportunities and good practice, the
# lessons learned, and recommendations.
DEFAULT_IMR_SECTIONS: tuple[str, ...] = ("chronology", "analysis-of-key-decisions", "missed-opportunities",
                                         "good-practice", "lessons-learned", "recommendations")


class ReviewPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    imr_sections: tuple[SectionKey, ...] = Field(DEFAULT_IMR_SECTIONS, min_length=1, max_length=20)
    rr_meeting_time: time = time(10, 0)
    rr_meeting_minutes: int = Field(120, ge=15, le=480)
    rr_meeting_place: Place = "Online: the SBU sends the link"

    @field_validator("imr_sections", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("imr_sections")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a section is named twice")
        return value

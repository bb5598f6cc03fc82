"""Errors a person can act on. The CLI prints their message as one line and exits with code 2.

Validation errors are put into words by `describe_validation_error`, which names each failing field
and never echoes what was submitted (docs/architecture.md, "Data protection").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class SbuError(Exception):
    """A refusal or a problem with input or configuration, explained in words."""


class NotFound(SbuError):
    pass


class Refused(SbuError):
    """The procedure or the case's state does not allow what was asked; nothing was written."""


class StoreUnavailable(SbuError):
    """The case store could not be reached, or lost the connection, during a change. The change
    was not made, or (if the connection was lost at the commit itself) possibly was: every command
    can be run again safely, since the same referral, decision or record is recognised."""


_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


# An answer with thousands of unknown fields is one mistake, not a page of them.
MAX_PROBLEMS = 10


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each failing field (the first `MAX_PROBLEMS` of them), never the value
    submitted."""
    parts: list[str] = []
    problems = error.errors(include_input=False, include_url=False, include_context=False)
    for item in problems[:MAX_PROBLEMS]:
        location = ".".join(
            str(part) if isinstance(part, int) or _SAFE_KEY.match(str(part)) else "<field>"
            for part in item["loc"]
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unexpected field"
        parts.append(f"{location}: {message}" if location else message)
    if len(problems) > MAX_PROBLEMS:
        parts.append(f"and {len(problems) - MAX_PROBLEMS} more problems")
    return "; ".join(parts)

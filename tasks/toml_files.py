"""Reading one of the partnership's TOML files (the mail directory, the people directory)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from models.errors import SbuError


def read_toml(path: Path, source: str) -> dict[str, Any]:
    """The file's tables; an SbuError starting with `source` when it is missing or not TOML. The
    decoder's message carries a line and column, never the offending text."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SbuError(f"{source}: file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise SbuError(f"{source}: not valid TOML ({error})") from None

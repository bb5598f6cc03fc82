"""Figures the tests measure, for the docs' table of faults injected and what was lost.

`record_figure(kind="fault", what="...", injected=1, lost=0, doubled=0)` appends the row as one
JSON line to the file named by SBU_FIGURES_FILE; without it, it does nothing. Another step builds
the docs' table from those lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record_figure(**row: Any) -> None:
    target = os.environ.get("SBU_FIGURES_FILE")
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row, sort_keys=True, default=str) + "\n")

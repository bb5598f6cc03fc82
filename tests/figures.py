"""The reliability figures: tests that inject faults, try inputs or hold a load
record what they did and what was lost, one JSON line each, to the file `SBU_FIGURES_FILE` names.
`make figures` sets it and turns the file into docs/RELIABILITY.md (`tests.figures_table`);
without it, recording costs nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path


def record_figure(**row: object) -> None:
    """Append one row, e.g. `record_figure(kind="load", what="...", held=40, lost=0)`, if asked to."""
    target = os.environ.get("SBU_FIGURES_FILE")
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row, default=str, sort_keys=True) + "\n")

"""The figures the tests measure, for the table in the docs (issue 10, item 7).

`record_figure(**row)` appends `row` as one JSON line to the file named by `SBU_FIGURES_FILE`, when
it is set; otherwise it does nothing, so an ordinary test run writes no file.
"""

from __future__ import annotations

import json
import os
from typing import Any


def record_figure(**row: Any) -> None:
    path = os.environ.get("SBU_FIGURES_FILE")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=True, default=str) + "\n")

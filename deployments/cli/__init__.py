"""The `sbu` command: the SBU's front door to the pipeline.

Every command has help with an example; every query has `--json`; every error is one line on
stderr with exit code 2, never a traceback, and nothing is written when a command is refused
(`deployments.cli.app`). The case commands are in `deployments.cli.commands`, the outbox and the
mail sink in `deployments.cli.mail`, the audit trail in `deployments.cli.trail`.
"""

from __future__ import annotations

import os
import sys

# pydantic looks for plugins by scanning the entry points of every installed distribution (Prefect
# brings about 150) the first time a model is built: a tenth of what `sbu timetable` costs. The
# pipeline uses no pydantic plugin; set the variable yourself to bring them back.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# Imported for their commands: each registers itself, in the order `sbu --help` lists them.
from deployments.cli import commands, importing, mail, reports, reviews, trail  # noqa: F401
from deployments.cli.app import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

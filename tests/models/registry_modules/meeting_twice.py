"""Adds the Rapid Review's own meeting to the CSPR: one step id in two processes."""

from __future__ import annotations

from dataclasses import replace

from models.processes.rapid_review import MEETING

STEPS = {"cspr": (replace(MEETING, waits=("cspr-evidence",)),)}

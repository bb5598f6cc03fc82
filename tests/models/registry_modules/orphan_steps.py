"""Adds a step to a process no registry has."""

from __future__ import annotations

from dataclasses import replace

from models.processes.cspr import DRAFT_REPORT

STEPS = {"toy-survey": (replace(DRAFT_REPORT, step="toy-survey-done", waits=()),)}

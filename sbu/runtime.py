"""The case service for a flow process. A served flow runs in a process the runner starts; this is
that process's edge, where settings are read from the environment once."""

from __future__ import annotations

from functools import cache

from sbu.db import Store
from sbu.service import CaseService
from sbu.settings import Settings, load_settings


@cache
def settings() -> Settings:
    return load_settings()


@cache
def service() -> CaseService:
    current = settings()
    return CaseService(store=Store(current.sqlalchemy_url).migrate(), settings=current,
                       clock=current.clock())

"""The case service for a flow process. A served flow runs in a process the runner starts; this is
that process's edge, where settings are read from the environment once and the registry is built
(with any process modules the settings name)."""

from __future__ import annotations

from functools import cache

from models.registry import Registry, build_registry
from models.settings import Settings, load_settings
from tasks.service import CaseService
from tasks.store.db import Store


@cache
def settings() -> Settings:
    return load_settings()


@cache
def registry() -> Registry:
    return build_registry(settings().process_modules)


@cache
def service() -> CaseService:
    current = settings()
    return CaseService(store=Store(current.sqlalchemy_url).migrate(), settings=current,
                       clock=current.clock(), registry=registry())

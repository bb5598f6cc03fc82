"""The tables the code declares (`models.schema`, which the ORM classes map onto) are exactly the
tables the migrations build, on SQLite and on PostgreSQL: a column, type, index or constraint in
one and not the other would be a store that works in tests and fails on an upgraded database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import schema, tables
from tasks.store.db import Store


def differences(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata))


def test_the_migrated_store_has_exactly_the_declared_tables(store: Store) -> None:
    assert differences(store) == []


def test_the_orm_classes_map_onto_the_declared_tables() -> None:
    assert tables.Base.metadata is schema.metadata
    mapped = {cls.__table__ for cls in tables.Base.__subclasses__()}
    assert mapped == set(schema.metadata.tables.values())

"""The case store: the single source of truth (docs/architecture.md).

- `db`: the engine, sessions and migrations (SQLite under the data directory, or PostgreSQL).
- `queries`: what the store says about cases, read with SQLAlchemy Core (`sbu status`, the flows).
- `repositories`: reads and writes through the ORM, each taking the caller's session and never
  committing: the caller owns the transaction.
"""

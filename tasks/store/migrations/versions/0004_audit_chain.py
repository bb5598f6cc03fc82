"""The audit trail chained by hash: each audit row gets the hash of the row before it (`prev_hash`)
and its own (`hash`), computed here for the rows already there, in id order; and the chain's head
(`audit_chain_head`), the one row every writer locks to link its rows after the newest.

The append-only triggers are dropped while the existing rows are given their hashes and created
again afterwards, with two more: the head row cannot be deleted, and on PostgreSQL neither table
can be emptied with TRUNCATE (which row triggers do not see).

Self-contained: it needs only the `audit_events` table as 0001 made it and carries its own copy of
the canonical form (`models/audit.py`; a migration is a snapshot, and the migration test checks the
two agree), so it can be renumbered after another branch's migration by changing `down_revision`.

Revision ID: 0004_audit_chain
Revises: 0003_reviews
"""
import hashlib
import json
from datetime import UTC
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = '0004_audit_chain'
down_revision = '0003_reviews'
branch_labels = None
depends_on = None

_GENESIS = "0" * 64
_BATCH = 1000


def upgrade() -> None:
    _drop_audit_guards()
    op.add_column('audit_events', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_events', sa.Column('hash', sa.String(length=64), nullable=True))
    last_id, last_hash = _chain_existing_rows()
    # Nothing points at `audit_events`, so recreating it (SQLite's way of altering a column) is safe.
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_events_prev_hash'), ['prev_hash'])

    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_head_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.execute(sa.text("INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES (1, :id, :hash)")
               .bindparams(id=last_id, hash=last_hash))
    _make_audit_append_only()


def downgrade() -> None:
    _drop_audit_guards(chain=True)
    op.drop_table('audit_chain_head')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_events_prev_hash'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
    _make_audit_append_only(chain=False)


# -- the chain -----------------------------------------------------------------------------------

def _row_hash(row: sa.Row[Any], prev_hash: str) -> str:
    """The canonical form as `models/audit.py` defines it at this revision."""
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
    body = {"id": row.id, "case_id": row.case_id, "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": row.actor, "via": row.via, "action": row.action, "detail": row.detail,
            "prev_hash": prev_hash}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _chain_existing_rows() -> tuple[int, str]:
    """Give every existing row its link and hash, in id order, a batch at a time (an audit trail
    can be long). Returns the newest row's id and hash, for the head."""
    events = sa.table(
        "audit_events", sa.column("id", sa.Integer()), sa.column("case_id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String()),
        sa.column("via", sa.String()), sa.column("action", sa.String()), sa.column("detail", sa.JSON()),
        sa.column("prev_hash", sa.String()), sa.column("hash", sa.String()))
    link = (events.update().where(events.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("new_prev_hash"), hash=sa.bindparam("new_hash")))
    bind = op.get_bind()
    last_id, last_hash = 0, _GENESIS
    while True:
        rows = bind.execute(sa.select(events.c.id, events.c.case_id, events.c.at, events.c.actor,
                                      events.c.via, events.c.action, events.c.detail)
                            .where(events.c.id > last_id).order_by(events.c.id).limit(_BATCH)).all()
        if not rows:
            return last_id, last_hash
        updates = []
        for row in rows:
            row_hash = _row_hash(row, last_hash)
            updates.append({"row_id": row.id, "new_prev_hash": last_hash, "new_hash": row_hash})
            last_id, last_hash = row.id, row_hash
        bind.execute(link, updates)


# -- the guards --------------------------------------------------------------------------------------

# Audit rows are never updated or deleted (docs/architecture.md, "Data protection"): the database refuses it, not only the code.
# The same guards as 0001's, kept under the same names, plus the head's.
def _make_audit_append_only(*, chain: bool = True) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
            )
        if chain:
            op.execute(
                "CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head "
                "BEGIN SELECT RAISE(ABORT, 'the audit chain head is never deleted'); END"
            )
        return
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()"
    )
    if chain:
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()"
        )
        op.execute(
            "CREATE FUNCTION audit_chain_head_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit chain head is never deleted'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_head_kept BEFORE DELETE ON audit_chain_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_chain_head_refuse_delete()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_refuse_delete()"
        )


def _drop_audit_guards(*, chain: bool = False) -> None:
    """Drop the audit_events triggers, and with `chain` this revision's own. 0001's trigger
    function stays: 0001 owns it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        if chain:
            op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_delete")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    if chain:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_kept ON audit_chain_head")
        op.execute("DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head")
        op.execute("DROP FUNCTION IF EXISTS audit_chain_head_refuse_delete()")

"""Anchors as rows, and whether a person set an item's due date as a column.

- Each anchor date of a case becomes a row of `case_anchors` (case, anchor, date), so that a
  process may declare an anchor of its own without a migration. The values of `cases`' anchor
  columns (the DSPs' decision, the SIN, notification, the meeting, the Rapid Review's outcome and
  report, the CSPR's commissioning, planned publication, IMR requests and publication) move into
  rows, and those columns go. The referral's own dates stay on `cases` as referred
  (`referred_on`, `la_aware_on`, `incident_on`) and are also the case's first two anchor rows
  (`referral-received`, `la-aware`), which the clocks count from.
- `items.due_set_by_person`: the item's due date is one a person gave when it opened (the IMRs on
  the panel's date, an action's due date), so it stays when its anchor moves. Until now the
  engine read that from its rule's words, which then began "set by "; existing rows are filled
  from them.
- `items.anchor` widens to 40 characters, the length of any id a process declares.

The downgrade gives the columns back from the rows, and refuses while the store holds an anchor
0004 has no column for (a process's own): restore the backup taken before upgrading instead.

Self-contained: it knows the anchor columns as 0004 had them (a migration is a snapshot).

Revision ID: 0005_anchor_rows
Revises: 0004_audit_chain
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_anchor_rows'
down_revision = '0004_audit_chain'
branch_labels = None
depends_on = None

# Each anchor and the column of `cases` that held it at 0004.
_REFERRAL_COLUMNS = {"referral-received": "referred_on", "la-aware": "la_aware_on"}
_MOVED_COLUMNS = {
    "decision": "decided_on",
    "notification": "notified_on",
    "sin-submitted": "sin_submitted_on",
    "meeting": "meeting_on",
    "rr-outcome": "rr_outcome_on",
    "rr-report-sent": "rr_report_sent_on",
    "cspr-commissioned": "cspr_commissioned_on",
    "planned-publication": "planned_publication_on",
    "imrs-requested": "imrs_requested_on",
    "cspr-published": "cspr_published_on",
}
_SET_DATE_WORDS = "set by "
_OLD_ANCHOR_LENGTH = 27
_ANCHOR_LENGTH = 40


def upgrade() -> None:
    op.create_table('case_anchors',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('anchor', sa.String(length=_ANCHOR_LENGTH), nullable=False),
    sa.Column('anchor_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_anchors_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', 'anchor', name=op.f('pk_case_anchors'))
    )
    for anchor, column in {**_REFERRAL_COLUMNS, **_MOVED_COLUMNS}.items():
        op.execute(sa.text(
            f"INSERT INTO case_anchors (case_id, anchor, anchor_on) SELECT id, :anchor, {column} "
            f"FROM cases WHERE {column} IS NOT NULL").bindparams(anchor=anchor))
    for column in _MOVED_COLUMNS.values():
        # SQLite (3.35 and later) drops a column in place; recreating `cases` is not an option,
        # since every other table points at it.
        op.execute(f"ALTER TABLE cases DROP COLUMN {column}")

    op.add_column('items', sa.Column('due_set_by_person', sa.Boolean(), server_default=sa.false(),
                                     nullable=False))
    op.execute(sa.text("UPDATE items SET due_set_by_person = :yes WHERE rule LIKE :words")
               .bindparams(yes=True, words=f"{_SET_DATE_WORDS}%"))
    _anchor_length(_ANCHOR_LENGTH, was=_OLD_ANCHOR_LENGTH)


def downgrade() -> None:
    bind = op.get_bind()
    known = sorted({**_REFERRAL_COLUMNS, **_MOVED_COLUMNS})
    unknown = bind.execute(sa.text("SELECT count(*) FROM case_anchors WHERE anchor NOT IN :known")
                           .bindparams(sa.bindparam("known", known, expanding=True))).scalar_one()
    long_ids = bind.execute(sa.text("SELECT count(*) FROM items WHERE length(anchor) > :most")
                            .bindparams(most=_OLD_ANCHOR_LENGTH)).scalar_one()
    if unknown or long_ids:
        raise NotImplementedError(
            "0005_anchor_rows cannot be undone here: the store holds anchor dates a process declared, "
            "which 0004 has no column for. Restore the store from the backup taken before upgrading.")
    _anchor_length(_OLD_ANCHOR_LENGTH, was=_ANCHOR_LENGTH)
    op.execute("ALTER TABLE items DROP COLUMN due_set_by_person")
    for column in _MOVED_COLUMNS.values():
        op.add_column('cases', sa.Column(column, sa.Date(), nullable=True))
    for anchor, column in {**_REFERRAL_COLUMNS, **_MOVED_COLUMNS}.items():
        op.execute(sa.text(
            f"UPDATE cases SET {column} = (SELECT a.anchor_on FROM case_anchors a "
            f"WHERE a.case_id = cases.id AND a.anchor = :anchor) "
            f"WHERE EXISTS (SELECT 1 FROM case_anchors a WHERE a.case_id = cases.id AND a.anchor = :anchor)")
            .bindparams(anchor=anchor))
    op.drop_table('case_anchors')


def _anchor_length(length: int, *, was: int) -> None:
    """`items.anchor` as a string of `length` characters."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column('items', 'anchor', existing_type=sa.String(length=was), type_=sa.String(length=length),
                        existing_nullable=False)
        return
    # SQLite cannot change a column's type, and recreating `items` is not an option (timers point
    # at it): a new column takes the values and the old one's name. Its default is never used (the
    # code always names an anchor) and is there because SQLite adds a NOT NULL column only with one.
    op.execute(f"ALTER TABLE items ADD COLUMN anchor_resized VARCHAR({length}) NOT NULL DEFAULT ''")
    op.execute("UPDATE items SET anchor_resized = anchor")
    op.execute("ALTER TABLE items DROP COLUMN anchor")
    op.execute("ALTER TABLE items RENAME COLUMN anchor_resized TO anchor")

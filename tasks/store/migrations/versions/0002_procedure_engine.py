"""The procedure engine: dated items instead of steps, timers keyed by their item, and one row per
process a case runs (`case_runs`) instead of a column per run.

Existing cases keep everything: each step becomes an item (its process, title and anchor filled in
from the procedure as it stood at this revision), each timer points at its step's item, and each
case's flow run and Rapid Review run become rows of `case_runs`.

Revision ID: 0002_procedure_engine
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_procedure_engine'
down_revision = '0001_initial'
branch_labels = None
depends_on = None

# The procedure as it stood at this revision (a migration is a snapshot; later changes to the
# registry do not reach back into it).
_PROCESS = {
    "dsp-decision": "case", "sin-submission": "case", "partners-informed": "case",
    "rr-agency-responses": "rapid-review", "rr-meeting": "rapid-review",
    "rr-report-to-panel": "rapid-review",
}
_TITLE = {
    "dsp-decision": "DSPs decide on a SIN and a Rapid Review",
    "sin-submission": "Local authority submits the Serious Incident Notification",
    "partners-informed": "Local authority informs the safeguarding partners",
    "rr-agency-responses": "Every involved agency returns its information",
    "rr-meeting": "Rapid Review meeting is held",
    "rr-report-to-panel": "Rapid Review sent to the National Panel",
    "cspr-reviewer-appointed": "Independent reviewer appointed",
    "cspr-terms-of-reference": "Terms of reference agreed",
    "cspr-imrs": "Individual Management Reviews returned",
    "cspr-family-engagement": "Family engagement completed",
    "cspr-draft-report": "Draft report received",
    "cspr-final-report": "Final report agreed",
    "cspr-report-to-panel": "Final report sent to the Panel and the Secretary of State",
    "cspr-publication": "Review published",
}
_ANCHOR = {
    "dsp-decision": "referral-received", "sin-submission": "la-aware", "partners-informed": "la-aware",
    "rr-agency-responses": "notification", "rr-meeting": "notification",
    "rr-report-to-panel": "sin-submitted", "cspr-report-to-panel": "planned-publication",
}


def upgrade() -> None:
    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=40), nullable=False),
    sa.Column('step', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('state', sa.String(length=17), nullable=False),
    sa.Column('anchor', sa.String(length=27), nullable=False),
    sa.Column('anchor_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('rule', sa.String(length=120), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=80), nullable=True),
    sa.Column('completed_via', sa.String(length=18), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_items_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items')),
    sa.UniqueConstraint('case_id', 'step', 'subject', name='uq_items_case_step_subject')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_items_due_on'), ['due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_items_state'), ['state'], unique=False)

    op.create_table('case_runs',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('process', sa.String(length=40), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_runs_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', 'process', name=op.f('pk_case_runs'))
    )

    _copy_steps_to_items()
    _copy_runs()
    # Plain ALTERs (SQLite 3.35+ and PostgreSQL): neither column has an index or a constraint, and
    # recreating `cases` would mean dropping a table other tables' foreign keys point at.
    op.execute("ALTER TABLE cases DROP COLUMN flow_run_id")
    op.execute("ALTER TABLE cases DROP COLUMN rapid_review_run_id")

    op.add_column('timers', sa.Column('item_id', sa.Integer(), nullable=True))
    op.execute("UPDATE timers SET item_id = (SELECT i.id FROM items i WHERE i.case_id = timers.case_id "
               "AND i.step = timers.step AND i.subject = '')")
    # Nothing points at `timers`, so recreating it (SQLite's way of altering a column) is safe.
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.alter_column('item_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_timers_item_id_items'), 'items', ['item_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_timers_item_id'), ['item_id'], unique=False)
        batch_op.drop_column('step')

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_steps_state'))
        batch_op.drop_index(batch_op.f('ix_steps_due_on'))
        batch_op.drop_index(batch_op.f('ix_steps_case_id'))
    op.drop_table('steps')


def downgrade() -> None:
    raise NotImplementedError(
        "0002_procedure_engine cannot be undone: items with a subject and processes added since have "
        "no place in the 0001 schema. Restore the store from the backup taken before upgrading.")


def _lookup(mapping: dict[str, str], column: sa.ColumnElement[str], otherwise: str) -> sa.Case[str]:
    return sa.case(mapping, value=column, else_=sa.literal(otherwise))


def _copy_steps_to_items() -> None:
    steps = sa.table("steps", *(sa.column(name) for name in (
        "case_id", "step", "state", "anchor_on", "due_on", "rule", "opened_at", "completed_on",
        "completed_at", "completed_by", "completed_via", "details")))
    items = sa.table("items", *(sa.column(name) for name in (
        "case_id", "process", "step", "subject", "title", "state", "anchor", "anchor_on", "due_on",
        "rule", "opened_at", "completed_on", "completed_at", "completed_by", "completed_via",
        "details")))
    source = sa.select(
        steps.c.case_id, _lookup(_PROCESS, steps.c.step, "cspr"), steps.c.step, sa.literal(""),
        _lookup(_TITLE, steps.c.step, "Step"), steps.c.state,
        _lookup(_ANCHOR, steps.c.step, "cspr-commissioned"), steps.c.anchor_on, steps.c.due_on,
        steps.c.rule, steps.c.opened_at, steps.c.completed_on, steps.c.completed_at,
        steps.c.completed_by, steps.c.completed_via, steps.c.details)
    op.execute(items.insert().from_select(list(items.c), source))


def _copy_runs() -> None:
    # Every case runs the case process from its referral; a case with Rapid Review steps runs the
    # Rapid Review too, whether or not Prefect had been told yet (reconcile creates what is missing).
    op.execute("INSERT INTO case_runs (case_id, process, flow_run_id, started_at) "
               "SELECT id, 'case', flow_run_id, created_at FROM cases")
    op.execute("INSERT INTO case_runs (case_id, process, flow_run_id, started_at) "
               "SELECT c.id, 'rapid-review', c.rapid_review_run_id, c.created_at FROM cases c "
               "WHERE c.rapid_review_run_id IS NOT NULL OR EXISTS "
               "(SELECT 1 FROM steps s WHERE s.case_id = c.id AND s.step LIKE 'rr-%')")

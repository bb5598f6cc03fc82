"""The reviews run to the end: the Rapid Review's outcome, the CSPR, IMRs and action plans.

- `cases` gains the anchor dates of the new steps and the review's route.
- Each agency's Rapid Review information becomes an item of its own (subject: the agency), owed by
  the agency (`items.agency`), with its own timers; `case_agencies.responded_on` goes, its dates
  now on those items. An open case's one `rr-agency-responses` item is replaced by one per agency:
  its scheduled timers are copied to each agency still to respond (new keys, scheduled in Prefect
  by `sbu serve`'s catch-up), and the old timers are deleted (their deadline-check runs, if any,
  find no timer and exit quietly).
- The DSP decision's signatures are kept by role (`decisions.sign_off`). The spine recorded three
  names, in the order its form asked for them (local authority, health, police), and they are
  kept in that order as those roles' signatures.
- `records` keeps every form as submitted; `meetings` the Rapid Review meeting as arranged.

Revision ID: 0003_reviews
Revises: 0002_procedure_engine
"""
import json
from typing import Any

from alembic import op
import sqlalchemy as sa

revision = '0003_reviews'
down_revision = '0002_procedure_engine'
branch_labels = None
depends_on = None

# The procedure as it stood at this revision (a migration is a snapshot).
_AGENCY_STEP = "rr-agency-responses"
_AGENCY_TITLE = "Agency information for the Rapid Review"
_DSP_ROLES = ("dsp-la", "dsp-health", "dsp-police")


def upgrade() -> None:
    for column in ("rr_outcome_on", "rr_report_sent_on", "imrs_requested_on", "cspr_published_on"):
        op.add_column('cases', sa.Column(column, sa.Date(), nullable=True))
    op.add_column('cases', sa.Column('review', sa.String(length=23), nullable=True))
    op.add_column('items', sa.Column('agency', sa.String(length=28), nullable=True))

    op.create_table('records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('process', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('form_values', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=80), nullable=False),
    sa.Column('recorded_via', sa.String(length=18), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_records_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_records_case_id'), ['case_id'], unique=False)

    op.create_table('meetings',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('arranged_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_meetings_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_meetings'))
    )

    _one_item_per_agency()
    op.execute("ALTER TABLE case_agencies DROP COLUMN responded_on")

    op.execute("ALTER TABLE decisions RENAME COLUMN dsps_present TO sign_off")
    _signatures_by_role()


def downgrade() -> None:
    raise NotImplementedError(
        "0003_reviews cannot be undone: the reviews it records (outcomes, CSPRs, IMRs, actions) have "
        "no place in the 0002 schema. Restore the store from the backup taken before upgrading.")


def _one_item_per_agency() -> None:
    connection = op.get_bind()
    parents = connection.execute(sa.text(
        "SELECT i.id, i.case_id, c.case_ref, i.process, i.state, i.anchor, i.anchor_on, i.due_on, i.rule, "
        "i.opened_at, i.completed_at, i.completed_by, i.completed_via FROM items i "
        "JOIN cases c ON c.id = i.case_id WHERE i.step = :step AND i.subject = ''"),
        {"step": _AGENCY_STEP}).mappings().all()
    for parent in parents:
        agencies = connection.execute(sa.text(
            "SELECT agency, responded_on FROM case_agencies WHERE case_id = :case ORDER BY agency"),
            {"case": parent["case_id"]}).all()
        timers = connection.execute(sa.text(
            "SELECT kind, sequence, fire_at FROM timers WHERE item_id = :item AND state = 'scheduled'"),
            {"item": parent["id"]}).mappings().all()
        for agency, responded_on in agencies:
            state = "done" if responded_on is not None else (
                "open" if parent["state"] == "open" else parent["state"])
            item_id = connection.execute(sa.text(
                "INSERT INTO items (case_id, process, step, subject, title, state, anchor, anchor_on, due_on, "
                "rule, opened_at, completed_on, completed_at, completed_by, completed_via, details, agency) "
                "VALUES (:case, :process, :step, :agency, :title, :state, :anchor, :anchor_on, :due_on, :rule, "
                ":opened_at, :completed_on, :completed_at, :completed_by, :completed_via, :details, :agency) "
                "RETURNING id"),
                {"case": parent["case_id"], "process": parent["process"], "step": _AGENCY_STEP,
                 "agency": agency, "title": _AGENCY_TITLE, "state": state, "anchor": parent["anchor"],
                 "anchor_on": parent["anchor_on"], "due_on": parent["due_on"], "rule": parent["rule"],
                 "opened_at": parent["opened_at"], "completed_on": responded_on,
                 "completed_at": parent["completed_at"] if responded_on is not None else None,
                 "completed_by": parent["completed_by"] if responded_on is not None else None,
                 "completed_via": parent["completed_via"] if responded_on is not None else None,
                 "details": json.dumps({"agency": agency})}).scalar_one()
            if state != "open":
                continue
            for timer in timers:
                key = (f"{parent['case_ref'].lower()}-{_AGENCY_STEP}-{agency}-{timer['kind']}-"
                       f"{timer['sequence']}-{_day(parent['due_on'])}")
                connection.execute(sa.text(
                    "INSERT INTO timers (case_id, item_id, kind, sequence, fire_at, key, state) "
                    "VALUES (:case, :item, :kind, :sequence, :fire_at, :key, 'scheduled')"),
                    {"case": parent["case_id"], "item": item_id, "kind": timer["kind"],
                     "sequence": timer["sequence"], "fire_at": timer["fire_at"], "key": key})
        connection.execute(sa.text("DELETE FROM timers WHERE item_id = :item"), {"item": parent["id"]})
        connection.execute(sa.text("DELETE FROM items WHERE id = :item"), {"item": parent["id"]})


def _day(value: Any) -> str:
    # SQLite hands dates back as text, PostgreSQL as dates.
    return str(value).replace("-", "")[:8]


def _signatures_by_role() -> None:
    connection = op.get_bind()
    for row_id, stored in connection.execute(sa.text("SELECT id, sign_off FROM decisions")).all():
        names = (json.loads(stored) if isinstance(stored, str) else stored).get("names", [])
        sign_off = {"sign_off": [{"role": role, "name": name, "deputy": False}
                                 for role, name in zip(_DSP_ROLES, names, strict=False)]}
        connection.execute(sa.text("UPDATE decisions SET sign_off = :value WHERE id = :id"),
                           {"value": json.dumps(sign_off), "id": row_id})

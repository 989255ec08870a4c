"""measurement runs: a full row stands for the later measurements of the same (URL, vantage)
with the same observable outcome (repeats, repeated_until); the open run of each (URL, vantage)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 13:00:00

Columns are added (SQLite: ALTER TABLE ADD COLUMN, no table copy), so upgrading a large database
takes seconds; the rows already stored stay as they are (runs of one) and compaction starts with
the next measurement of each (URL, vantage).

On PostgreSQL the evidence of new rows is compressed and kept out of line (toast_tuple_target):
a run's counters are updated with every repetition, and an update copies the row, which must
then be a few hundred bytes, not the evidence's kilobytes.
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _time() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE measurements SET (toast_tuple_target = 128)')
    for table in ('measurements', 'verdicts'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('repeats', sa.Integer(), server_default='0',
                                          nullable=False))
            batch_op.add_column(sa.Column('repeated_until', _time(), nullable=True))
    op.create_table(
        'runs',
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('vantage_id', sa.Integer(), nullable=False),
        sa.Column('measurement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('verdict_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=True),
        sa.Column('outcome', sa.String(length=64), nullable=False),
        sa.Column('body_length', sa.BigInteger(), nullable=True),
        sa.Column('started_at', _time(), nullable=False),
        sa.Column('last_at', _time(), nullable=False),
        sa.ForeignKeyConstraint(['measurement_id'], ['measurements.id'],
                                name=op.f('fk_runs_measurement_id_measurements'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['vantage_id'], ['vantages.id'],
                                name=op.f('fk_runs_vantage_id_vantages')),
        sa.ForeignKeyConstraint(['verdict_id'], ['verdicts.id'],
                                name=op.f('fk_runs_verdict_id_verdicts'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('url', 'vantage_id', name=op.f('pk_runs')),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE measurements RESET (toast_tuple_target)')
    op.drop_table('runs')
    for table in ('verdicts', 'measurements'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('repeated_until')
            batch_op.drop_column('repeats')

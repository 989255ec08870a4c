"""content-addressed evidence pieces and the hash chain of kept rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:40:00

Only the schema: the table of evidence pieces, the measurement columns that refer to them
(evidence_z, evidence_refs) and those of the hash chain (chain_seq, chain), with two partial
indexes. Columns are added (SQLite: ALTER TABLE ADD COLUMN, no table copy), so this takes seconds
on a large database; rows stored before keep their evidence whole in the JSON column and are read
as they are. `blockwatch db compact` converts them to pieces in place, in short transactions,
resumable (storage/convert.py); the chain is extended over kept rows by storage/chain.py.

On PostgreSQL the measurements keep 0004's toast_tuple_target: a run's counters are updated with
every repetition and an update copies the row, so the few hundred bytes of a row's compressed
evidence are still best kept out of line.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'evidence_pieces',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('sha256', name=op.f('pk_evidence_pieces')),
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_z', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('evidence_refs', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('chain_seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('chain', sa.String(length=64), nullable=True))
    op.create_index('ix_measurements_vantage_chain', 'measurements', ['vantage_id', 'chain_seq'],
                    unique=True, sqlite_where=sa.text('chain_seq IS NOT NULL'),
                    postgresql_where=sa.text('chain_seq IS NOT NULL'))
    op.create_index('ix_measurements_unchained', 'measurements', ['id'],
                    sqlite_where=sa.text('keep AND chain_seq IS NULL'),
                    postgresql_where=sa.text('keep AND chain_seq IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_measurements_unchained', table_name='measurements')
    op.drop_index('ix_measurements_vantage_chain', table_name='measurements')
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_column('chain')
        batch_op.drop_column('chain_seq')
        batch_op.drop_column('evidence_refs')
        batch_op.drop_column('evidence_z')
    op.drop_table('evidence_pieces')

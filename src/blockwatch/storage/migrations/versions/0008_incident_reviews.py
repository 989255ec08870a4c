"""a person's reading of a feed entry (incident_reviews), which overrides the extractor's

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 01:00:00

A new table only: nothing stored before changes.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'incident_reviews',
        sa.Column('id', BIG, autoincrement=True, nullable=False),
        sa.Column('entry_id', BIG, nullable=False),
        sa.Column('incident', sa.Boolean(), nullable=False),
        sa.Column('types', JSON, nullable=False),
        sa.Column('outlets', JSON, nullable=False),
        sa.Column('people', JSON, nullable=False),
        sa.Column('status', sa.String(length=32), nullable=True),
        sa.Column('country', sa.String(length=8), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('extracted', JSON, nullable=True),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['feed_entries.id'],
                                name=op.f('fk_incident_reviews_entry_id_feed_entries'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_reviews')),
        sa.UniqueConstraint('entry_id', name=op.f('uq_incident_reviews_entry_id')),
    )


def downgrade() -> None:
    op.drop_table('incident_reviews')

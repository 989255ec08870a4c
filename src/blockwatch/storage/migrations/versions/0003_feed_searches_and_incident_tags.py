"""feed kinds, the search query and publisher site of an entry, an incident's country, status
and evidence

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 12:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='feed',
                                      nullable=False))
    with op.batch_alter_table('feed_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('query', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_url', sa.Text(), nullable=True))
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('evidence', JSON, nullable=True))
        batch_op.create_index('ix_incidents_country', ['country'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_country')
        batch_op.drop_column('evidence')
        batch_op.drop_column('status')
        batch_op.drop_column('country')
    with op.batch_alter_table('feed_entries', schema=None) as batch_op:
        batch_op.drop_column('source_url')
        batch_op.drop_column('query')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('kind')

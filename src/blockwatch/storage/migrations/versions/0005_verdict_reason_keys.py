"""verdict reason keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:20:00.000000

The keys a verdict's reason is rendered from (analysis/reasons.py), so pages and digests can say
it in the reader's language. Older rows have none: their stored English text is shown.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('verdicts', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'reason_keys',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verdicts', schema=None) as batch_op:
        batch_op.drop_column('reason_keys')

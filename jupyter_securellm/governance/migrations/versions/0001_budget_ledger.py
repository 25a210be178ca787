"""Budget ledger: one row per call (reservation, then settlement) and one lock row per user.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "securellm_budget_subjects",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "securellm_budget_calls",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False, server_default=""),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("est_tokens", sa.Integer, nullable=False),
        sa.Column("est_usd", sa.Float, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=True),
        sa.Column("usd", sa.Float, nullable=True),
        sa.Column("server", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_securellm_calls_user_month", "securellm_budget_calls", ["user", "month"])
    op.create_index("ix_securellm_calls_user_created", "securellm_budget_calls", ["user", "created_at"])


def downgrade():
    op.drop_index("ix_securellm_calls_user_created", "securellm_budget_calls")
    op.drop_index("ix_securellm_calls_user_month", "securellm_budget_calls")
    op.drop_table("securellm_budget_calls")
    op.drop_table("securellm_budget_subjects")

"""Feedback tables: star/thumb/tag/comment ratings and blind A/B votes, append-only.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("ratings", "comparisons")


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asset_sha256", sa.String(64), nullable=False),
        sa.Column("asset_path", sa.Text, nullable=False, server_default=""),
        sa.Column("generator", sa.String(64), nullable=False),
        sa.Column("model", sa.Text, nullable=False, server_default=""),
        sa.Column("preset", sa.Text, nullable=False, server_default=""),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("seed", sa.BigInteger, nullable=True),
        sa.Column("weights_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_id", sa.Text, nullable=False, server_default=""),
        sa.Column("session_id", sa.Text, nullable=False, server_default=""),
        sa.Column("stars", sa.SmallInteger, nullable=True),
        sa.Column("thumb", sa.SmallInteger, nullable=True),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("uid", name="uq_ratings_uid"),
        sa.CheckConstraint("stars IS NULL OR (stars >= 1 AND stars <= 5)", name="ck_ratings_stars"),
        sa.CheckConstraint("thumb IS NULL OR thumb IN (-1, 1)", name="ck_ratings_thumb"),
        sa.CheckConstraint("length(asset_sha256) = 64", name="ck_ratings_sha256"),
        sa.CheckConstraint("stars IS NOT NULL OR thumb IS NOT NULL OR tags <> '[]' OR comment <> ''",
                           name="ck_ratings_not_empty"),
    )
    op.create_index("ix_ratings_sha256", "ratings", ["asset_sha256"])
    op.create_index("ix_ratings_generator", "ratings", ["generator", "model", "preset"])
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generator", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False, server_default=""),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("a_sha256", sa.String(64), nullable=False),
        sa.Column("b_sha256", sa.String(64), nullable=False),
        sa.Column("a_path", sa.Text, nullable=False, server_default=""),
        sa.Column("b_path", sa.Text, nullable=False, server_default=""),
        sa.Column("a_variant", sa.Text, nullable=False, server_default=""),
        sa.Column("b_variant", sa.Text, nullable=False, server_default=""),
        sa.Column("a_seed", sa.BigInteger, nullable=True),
        sa.Column("b_seed", sa.BigInteger, nullable=True),
        sa.Column("a_weights_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("b_weights_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("winner", sa.String(4), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False, server_default=""),
        sa.Column("session_id", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("uid", name="uq_comparisons_uid"),
        sa.CheckConstraint("winner IN ('a', 'b', 'tie')", name="ck_comparisons_winner"),
        sa.CheckConstraint("a_sha256 <> b_sha256", name="ck_comparisons_distinct"),
    )
    op.create_index("ix_comparisons_generator", "comparisons", ["generator"])
    _append_only()


def _append_only() -> None:
    """Database triggers that refuse UPDATE and DELETE: feedback is a log, never rewritten."""
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
        elif dialect == "postgresql":
            op.execute(f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION '{table} are append-only'; END; $$ LANGUAGE plpgsql""")
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    op.drop_table("comparisons")
    op.drop_table("ratings")

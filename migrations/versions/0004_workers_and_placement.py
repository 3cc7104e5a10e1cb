"""Workers and placement: the workers table, and the job columns placement filters and orders on.

Revision ID: 0004
Revises: 0005
Create Date: 2026-12-02 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("device_kind", sa.String(length=16), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("gpu_name", sa.String(length=200), nullable=True),
        sa.Column("gpu_memory_gb", sa.Double(), nullable=True),
        sa.Column("inventory_source", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_heartbeat_at"), ["heartbeat_at"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=64), nullable=False, server_default="jobs"))
        batch_op.add_column(sa.Column("gpus", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("gpu_memory_gb", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("worker_id", sa.String(length=200), nullable=True))
    _copy_resources_into_columns()
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        # The defaults only filled the existing rows; the service always writes these columns.
        batch_op.alter_column("queue", server_default=None)
        batch_op.alter_column("gpus", server_default=None)
        batch_op.create_index(batch_op.f("ix_jobs_worker_id"), ["worker_id"], unique=False)
        batch_op.create_index(
            "ix_jobs_placement", ["status", "queue", "priority", "created_at"], unique=False
        )


def _copy_resources_into_columns() -> None:
    """Fill queue/gpus/gpu_memory_gb of existing jobs from their `resources` JSON."""
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("resources", sa.JSON),
        sa.column("queue", sa.String),
        sa.column("gpus", sa.Integer),
        sa.column("gpu_memory_gb", sa.Float),
    )
    conn = op.get_bind()
    for job_id, resources in conn.execute(sa.select(jobs.c.id, jobs.c.resources)).all():
        res = resources or {}
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(
                queue=res.get("queue") or "jobs",
                gpus=int(res.get("gpus") or 0),
                gpu_memory_gb=res.get("gpu_memory_gb"),
            )
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_placement")
        batch_op.drop_index(batch_op.f("ix_jobs_worker_id"))
        batch_op.drop_column("worker_id")
        batch_op.drop_column("gpu_memory_gb")
        batch_op.drop_column("gpus")
        batch_op.drop_column("queue")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_heartbeat_at"))
    op.drop_table("workers")

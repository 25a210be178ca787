"""Alembic environment for the budget ledger; run programmatically by `budget.migrate` (no alembic.ini)."""
from __future__ import annotations

from alembic import context

from jupyter_securellm.governance.budget import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the budget migrations through jupyter_securellm.governance.budget.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  version_table=config.get_main_option("version_table") or "alembic_version")
with context.begin_transaction():
    context.run_migrations()

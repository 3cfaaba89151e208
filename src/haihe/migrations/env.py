"""Alembic environment: runs migrations on the engine handed in by haihe.migrations."""

from __future__ import annotations

from alembic import context

from haihe.core.db import Base
from haihe.migrations import from_models
from haihe.models import import_all_models

import_all_models()
config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=from_models,
    )
    context.run_migrations()

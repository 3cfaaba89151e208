"""Sample rows of an entry's current version — 样例数据 — masked by each item's sensitivity."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from haihe.catalogue import service
from haihe.catalogue.models import DataItem, Sensitivity
from haihe.core.auth import Principal
from haihe.core.masking import mask_value
from haihe.core.settings import Settings
from haihe.engine import make_store

HIDDEN = "***"
MAX_SAMPLE = 20


def masked(item: DataItem, value: Any) -> Any:
    """``value`` as a catalogue page may show it: L1 as is, L2 masked by kind, L3-L4 hidden."""
    if value is None:
        return None
    if item.sensitivity is Sensitivity.L1:
        return _plain(value)
    if item.sensitivity is Sensitivity.L2:
        return mask_value(str(_plain(value)), item.kind.value)
    return HIDDEN


def sample_rows(
    session: Session, *, actor: Principal, settings: Settings, code: str, limit: int = 5
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of the current version, masked; empty before the first load."""
    resource = service.get_resource(session, actor=actor, code=code)
    if resource.current_version is None:
        return []
    store = make_store(settings)
    manifest = store.manifest(resource.code, resource.current_version)
    wanted = max(1, min(limit, MAX_SAMPLE))
    rows: list[dict[str, Any]] = []
    for path in store.paths(manifest):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=wanted):
            rows.extend(batch.to_pylist())
            break
        if len(rows) >= wanted:
            break
    items = {i.name: i for i in resource.items}
    return [
        {name: masked(items[name], value) for name, value in row.items() if name in items}
        for row in rows[:wanted]
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value

"""Demo step: register the synthetic city's catalogue, publish it and load its datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.progress import Progress
from sqlalchemy.orm import Session

from haihe.catalogue import loading
from haihe.catalogue import service as catalogue
from haihe.catalogue.schemas import ItemIn, ResourceIn
from haihe.catalogue.topics import BASE_LIBRARY_BY_NAME, TOPIC_BY_NAME
from haihe.core.auth import Principal
from haihe.core.settings import Settings
from haihe.engine.schema import portable_schema, type_name
from haihe.synth import CityManifest
from haihe.synth.catalogue import catalogue_entries
from haihe.synth.schemas import DatasetInfo

# Generic wording for the demo's conditional entries; a real department writes its own.
CONDITIONS = "仅限履行法定职责使用；经提供部门审核同意后共享，不得转授他人。"
LEGAL_BASIS = "《政务信息资源共享管理暂行办法》（国发〔2016〕51号）"
NOT_SHARED_BASIS = "涉及个人隐私，依据《中华人民共和国个人信息保护法》第三十四条不予共享。"
OPEN_CONDITIONS = "注册用户签署数据使用协议、说明用途后开放。"
SHARE = {"unconditional": "unconditional", "conditional": "conditional", "none": "not_shared"}
OPEN = {"unconditional": "unconditional", "conditional": "conditional", "none": "not_open"}


def resource_for(dataset: DatasetInfo, synth_dir: Path) -> ResourceIn:
    """The catalogue description of one synthetic dataset, with portable column types."""
    schema = portable_schema(pq.read_schema(synth_dir / dataset.path))
    sharing = SHARE[dataset.share_type]
    opening = OPEN[dataset.open_type]
    items = [
        ItemIn(
            name=column.name,
            name_zh=column.name_zh,
            name_en=column.name.replace("_", " "),
            type=type_name(schema.field(column.name).type),
            is_key=column.is_key,
            nullable=column.nullable and not column.is_key,
            sensitivity=column.sensitivity,
            personal=column.personal,
            kind=column.kind,
        )
        for column in dataset.columns
    ]
    return ResourceIn(
        name_zh=dataset.name_zh,
        name_en=dataset.name_en,
        summary_zh=dataset.summary_zh,
        summary_en=dataset.summary_en,
        provider_code=dataset.provider,
        base_library=BASE_LIBRARY_BY_NAME[dataset.base_library] if dataset.base_library else None,
        topic=TOPIC_BY_NAME.get(dataset.topic),
        sharing_type=sharing,
        sharing_conditions=CONDITIONS if sharing == "conditional" else None,
        legal_basis=(
            LEGAL_BASIS
            if sharing == "conditional"
            else NOT_SHARED_BASIS
            if sharing == "not_shared"
            else None
        ),
        sharing_modes=["query", "verify", "bulk", "subscribe"] if sharing != "not_shared" else [],
        open_type=opening,
        open_conditions=OPEN_CONDITIONS if opening == "conditional" else None,
        update_cycle=dataset.update_cycle,
        steward_name=f"{dataset.provider}数据管理员",
        tags=[dataset.id.split(".", 1)[1]],
        items=items,
    )


def register_catalogue(
    session: Session,
    *,
    actor: Principal,
    manifest: CityManifest,
    synth_dir: Path,
    progress: Progress,
) -> dict[str, str]:
    """Describe and publish every synthetic dataset; returns dataset id → entry code."""
    task = progress.add_task("catalogue entries", total=len(manifest.datasets))
    codes: dict[str, str] = {}
    for dataset in manifest.datasets:
        entry = catalogue.create_resource(
            session, actor=actor, data=resource_for(dataset, synth_dir)
        )
        catalogue.publish(session, actor=actor, code=entry.code)
        codes[dataset.id] = entry.code
        progress.advance(task)
    return codes


def load_datasets(
    session_scope: Callable[[], Any],
    *,
    actor: Principal,
    settings: Settings,
    manifest: CityManifest,
    synth_dir: Path,
    codes: dict[str, str],
    progress: Progress,
) -> dict[str, tuple[int, int, int]]:
    """Load each dataset into its entry, a transaction each; code → (read, accepted, rejected)."""
    total = sum(d.bytes for d in manifest.datasets)
    task = progress.add_task("loading data", total=total)
    done = 0
    figures: dict[str, tuple[int, int, int]] = {}
    for dataset in manifest.datasets:
        source = loading.LoadSource.for_file(synth_dir / dataset.path)
        base = done

        def report(read: int, size: int | None, base: int = base) -> None:
            progress.update(task, completed=base + read)

        with session_scope() as session:
            load = loading.load_resource(
                session,
                actor=actor,
                settings=settings,
                code=codes[dataset.id],
                source=source,
                progress=report,
            )
            figures[codes[dataset.id]] = (load.rows_read, load.rows_accepted, load.rows_rejected)
        done += dataset.bytes
        progress.update(task, completed=done)
    return figures


FULL_SCALE_PERSONS = 3_200_000
FULL_SCALE_ENTRIES = 40_000


def generated_count(persons: int, real: int) -> int:
    """How many generated entries bring the catalogue to 40,000 at full scale (3.2 M persons)."""
    return max(
        0, round(FULL_SCALE_ENTRIES * min(persons, FULL_SCALE_PERSONS) / FULL_SCALE_PERSONS) - real
    )


def register_generated(
    session: Session,
    *,
    actor: Principal,
    count: int,
    seed: int,
    synth_dir: Path,
    progress: Progress,
) -> int:
    """Describe and publish ``count`` generated entries of the city's departments."""
    departments = pq.read_table(synth_dir / "city" / "departments.parquet").to_pylist()
    task = progress.add_task("catalogue entries (generated)", total=count)
    for entry in catalogue_entries(count, seed=seed, departments=departments):
        resource = catalogue.create_resource(session, actor=actor, data=ResourceIn(**entry))
        catalogue.publish(session, actor=actor, code=resource.code)
        progress.advance(task)
    return count

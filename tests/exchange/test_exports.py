"""Bulk exports of a really loaded resource: rows, scope, filters, masking, files, audit, expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_exports_world import World, build_world, death_rows

from haihe.audit.models import AuditEntry, AuditSubject
from haihe.core.auth import Principal
from haihe.core.db import transaction, utcnow
from haihe.core.errors import Forbidden, InvalidInput
from haihe.core.masking import mask_id_number, pseudonymise
from haihe.core.settings import Settings
from haihe.exchange import exports
from haihe.exchange.models import ExportJob, ExportStatus

ROWS = death_rows(120)


def rsj_user(world: World) -> Principal:
    return Principal(kind="user", id=9001, name="rsj_op", org_id=world.consumer_id, org_code="RSJ")


@pytest.fixture
def world(session: Session, settings: Settings, tmp_path: Path) -> World:
    return build_world(session, settings, tmp_path / "src", ROWS)


def export(
    factory: sessionmaker[Session],
    settings: Settings,
    world: World,
    *,
    items: list[str] | None = None,
    filters: list[dict[str, object]] | None = None,
    format: str = "parquet",
) -> ExportJob:
    """Create and run an export as RSJ's operator; return the finished job."""
    actor = rsj_user(world)
    with transaction(factory) as session:
        job = exports.create_export(
            session,
            actor=actor,
            code=world.code,
            items=items,
            filters=filters or [],
            format=format,
        )
        export_id = job.id
    exports.run_export(factory, settings=settings, export_id=export_id, actor=actor)
    with factory() as session:
        done = session.get(ExportJob, export_id)
        assert done is not None
        return done


def in_scope(rows: list[tuple[str, ...]], low_age: int = 60) -> list[tuple[str, ...]]:
    return [r for r in rows if int(r[4]) >= low_age]


def test_export_keeps_the_scope_projects_items_and_masks(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    job = export(session_factory, settings, world, items=["id_number", "name", "age"])
    table = pq.read_table(job.path or "")
    expected = in_scope(ROWS)
    assert job.status is ExportStatus.SUCCEEDED
    assert job.rows == len(expected)
    assert table.num_rows == len(expected)
    assert table.column_names == ["id_number", "name", "age"]
    assert sorted(table.column("id_number").to_pylist()) == sorted(
        mask_id_number(r[1]) for r in expected
    )
    # the grant names "name" among its unmasked items
    assert sorted(table.column("name").to_pylist()) == sorted(r[2] for r in expected)
    assert min(table.column("age").to_pylist()) >= 60


def test_filters_narrow_the_scope_further(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    filters: list[dict[str, object]] = [
        {"item": "age", "op": "between", "values": [55, 70]},
        {"item": "death_date", "op": "ge", "value": "2026-11-10"},
    ]
    job = export(session_factory, settings, world, items=["certificate_no"], filters=filters)
    table = pq.read_table(job.path or "")
    expected = sorted(r[0] for r in in_scope(ROWS) if int(r[4]) <= 70 and r[3] >= "2026-11-10")
    assert sorted(table.column("certificate_no").to_pylist()) == expected


def test_the_file_checksum_and_size_are_recorded(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    job = export(session_factory, settings, world)
    data = Path(job.path or "").read_bytes()
    assert job.checksum == hashlib.sha256(data).hexdigest()
    assert job.size_bytes == len(data)
    assert job.expires_at is not None
    assert job.finished_at is not None
    assert job.expires_at - job.finished_at == dt.timedelta(days=settings.export_ttl_days)


def test_csv_has_a_bom_a_header_and_masked_values(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    job = export(session_factory, settings, world, format="csv")
    raw = Path(job.path or "").read_bytes()
    table = pacsv.read_csv(job.path or "")
    assert raw.startswith(b"\xef\xbb\xbf")
    assert table.column_names == ["certificate_no", "id_number", "name", "death_date", "age"]
    assert table.num_rows == len(in_scope(ROWS))
    assert all("********" in v for v in table.column("id_number").to_pylist())


def test_the_export_is_audited_with_rows_and_subjects(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    job = export(session_factory, settings, world, items=["certificate_no", "age"])
    with session_factory() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exchange.export")
        ).one()
        tokens = set(
            session.scalars(select(AuditSubject.token).where(AuditSubject.entry_id == entry.id))
        )
    key = settings.secret_key_bytes()
    assert entry.mode == "bulk"
    assert entry.rows == job.rows
    assert entry.provider_code == "WJW"
    assert entry.org_code == "RSJ"
    assert tokens == {pseudonymise(key, r[1]) for r in in_scope(ROWS)}


def test_an_export_of_over_10000_rows_records_only_its_row_count(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    many = death_rows(13_400)  # three quarters are in scope: 10,050 rows
    world = build_world(session, settings, tmp_path / "src", many)
    job = export(session_factory, settings, world, items=["certificate_no"])
    with session_factory() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "exchange.export")).one()
    assert job.rows == len(in_scope(many))
    assert entry.rows == job.rows
    assert entry.subjects == 0
    assert "subjects not listed" in (entry.detail_json or "")


def test_items_outside_the_grant_are_refused_and_the_refusal_audited(
    session_factory: sessionmaker[Session], world: World
) -> None:
    with (
        pytest.raises(Forbidden, match="does not cover the items phone"),
        transaction(session_factory) as session,
    ):
        exports.create_export(
            session,
            actor=rsj_user(world),
            code=world.code,
            items=["age", "phone"],
            filters=[],
            format="csv",
        )
    with session_factory() as session:
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "exchange.export")
        ).all()
        jobs = session.scalars(select(ExportJob)).all()
    assert outcomes == ["refused"]
    assert jobs == []


def test_filters_on_items_outside_the_grant_are_refused(
    session_factory: sessionmaker[Session], session: Session, world: World
) -> None:
    from haihe.exchange.models import Grant

    grant = session.get(Grant, world.grant_id)
    assert grant is not None
    grant.items = ["certificate_no", "age"]
    session.commit()
    with pytest.raises(Forbidden, match="not name"), transaction(session_factory) as s:
        exports.create_export(
            s,
            actor=rsj_user(world),
            code=world.code,
            items=["age"],
            filters=[{"item": "name", "op": "prefix", "value": "张"}],
            format="csv",
        )


def test_a_filter_that_does_not_suit_its_item_is_invalid(
    session_factory: sessionmaker[Session], world: World
) -> None:
    with pytest.raises(InvalidInput, match="age"), transaction(session_factory) as s:
        exports.create_export(
            s,
            actor=rsj_user(world),
            code=world.code,
            items=None,
            filters=[{"item": "age", "op": "prefix", "value": "6"}],
            format="parquet",
        )


def test_an_unknown_format_is_invalid(session: Session, world: World) -> None:
    with pytest.raises(InvalidInput, match="xlsx"):
        exports.create_export(
            session, actor=rsj_user(world), code=world.code, items=None, filters=[], format="xlsx"
        )


def test_a_cancelled_export_does_not_run(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    actor = rsj_user(world)
    with transaction(session_factory) as session:
        job = exports.create_export(
            session, actor=actor, code=world.code, items=None, filters=[], format="csv"
        )
        exports.cancel_export(session, actor=actor, export_id=job.id)
    result = exports.run_export(session_factory, settings=settings, export_id=job.id)
    assert result is None
    assert not (settings.data_dir / "exports" / f"{job.id}.csv").exists()


def test_a_queued_export_left_by_a_stopped_process_is_picked_up(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    with transaction(session_factory) as session:
        job = exports.create_export(
            session, actor=rsj_user(world), code=world.code, items=None, filters=[], format="csv"
        )
    ran = exports.run_queued_exports(session_factory, settings=settings)
    with session_factory() as session:
        done = session.get(ExportJob, job.id)
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exchange.export")
        ).one()
    assert ran == 1
    assert done is not None
    assert done.status is ExportStatus.SUCCEEDED
    assert entry.org_code == "RSJ"
    assert entry.actor_name == "user:rsj_op"


def test_an_export_left_running_by_a_dead_process_runs_again_after_an_hour(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    with transaction(session_factory) as session:
        job = exports.create_export(
            session, actor=rsj_user(world), code=world.code, items=None, filters=[], format="csv"
        )
        job.status, job.started_at = ExportStatus.RUNNING, utcnow() - dt.timedelta(minutes=30)
    assert exports.run_queued_exports(session_factory, settings=settings) == 0  # may be alive
    later = utcnow() + dt.timedelta(minutes=31)
    ran = exports.run_queued_exports(session_factory, settings=settings, now=later)
    with session_factory() as session:
        done = session.get(ExportJob, job.id)
    assert ran == 1
    assert done is not None
    assert done.status is ExportStatus.SUCCEEDED
    assert done.rows == len(in_scope(ROWS))  # the grant's scope: age 60 and over


def test_expired_exports_lose_their_files(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    job = export(session_factory, settings, world)
    assert job.expires_at is not None
    with transaction(session_factory) as session:
        early = exports.remove_expired_exports(session, now=job.expires_at - dt.timedelta(1))
    with transaction(session_factory) as session:
        removed = exports.remove_expired_exports(session, now=job.expires_at)
        after = session.get(ExportJob, job.id)
    assert early == 0
    assert removed == 1
    assert after is not None
    assert after.status is ExportStatus.EXPIRED
    assert not Path(job.path or "").exists()


def test_an_export_whose_grant_expired_before_it_ran_fails(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    from haihe.exchange.models import Grant

    actor = rsj_user(world)
    with transaction(session_factory) as session:
        job = exports.create_export(
            session, actor=actor, code=world.code, items=None, filters=[], format="csv"
        )
        grant = session.get(Grant, world.grant_id)
        assert grant is not None
        grant.expires_at = utcnow() - dt.timedelta(seconds=1)
    status = exports.run_export(session_factory, settings=settings, export_id=job.id)
    with session_factory() as session:
        failed = session.get(ExportJob, job.id)
    assert status is ExportStatus.FAILED
    assert failed is not None
    assert failed.error == "the grant is no longer in force"

"""Every query of verification: source bindings and batch jobs."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, select
from sqlalchemy.orm import Session

from haihe.catalogue.models import DataItem, Resource
from haihe.verification.models import JobStatus, SourceBinding, VerificationJob


def bindings(session: Session) -> list[tuple[SourceBinding, Resource]]:
    """Every source binding with its catalogue entry, by role."""
    stmt = (
        select(SourceBinding, Resource)
        .join(Resource, Resource.id == SourceBinding.resource_id)
        .order_by(SourceBinding.role)
    )
    return [(b, r) for b, r in session.execute(stmt)]


def binding(session: Session, role: str) -> SourceBinding | None:
    return session.get(SourceBinding, role)


_bindings = cast(Table, SourceBinding.__table__)
_resources = cast(Table, Resource.__table__)
_items = cast(Table, DataItem.__table__)
# Built once: every single check reads its sources' bindings and entries so, in one statement.
_BOUND_ENTRIES: Any = select(
    _bindings.c.role,
    _resources.c.id,
    _resources.c.code,
    _resources.c.current_version,
    _resources.c.updated_at,
    _resources.c.provider_id,
).join(_resources, _resources.c.id == _bindings.c.resource_id)


def bound_entries(session: Session) -> dict[str, Row[Any]]:
    """Every bound role's entry as a plain row (id, code, current_version, updated_at,
    provider_id), by role — the hot path of a check, without ORM objects."""
    return {row.role: row for row in session.connection().execute(_BOUND_ENTRIES)}


def item_rows(session: Session, resource_id: int) -> list[Row[Any]]:
    """An entry's items as plain rows (name, type, kind, is_key), in order."""
    stmt = (
        select(_items.c.name, _items.c.type, _items.c.kind, _items.c.is_key)
        .where(_items.c.resource_id == resource_id)
        .order_by(_items.c.position)
    )
    return list(session.connection().execute(stmt))


def job_by_id(session: Session, job_id: int) -> VerificationJob | None:
    return session.get(VerificationJob, job_id)


def list_jobs(session: Session, *, org_id: int | None, limit: int) -> list[VerificationJob]:
    """The newest jobs first, of one organisation (``org_id``) or of all (None)."""
    stmt = select(VerificationJob).order_by(VerificationJob.id.desc()).limit(limit)
    if org_id is not None:
        stmt = stmt.where(VerificationJob.org_id == org_id)
    return list(session.scalars(stmt))


def unfinished_jobs(session: Session) -> list[VerificationJob]:
    """Jobs queued or left running (by a process that stopped), oldest first."""
    stmt = (
        select(VerificationJob)
        .where(VerificationJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        .order_by(VerificationJob.id)
    )
    return list(session.scalars(stmt))


def latest_job(session: Session, *, rule: str, requested_by: str) -> VerificationJob | None:
    """The newest job of ``rule`` (a rule or scenario) that ``requested_by`` asked for."""
    stmt = (
        select(VerificationJob)
        .where(VerificationJob.rule == rule, VerificationJob.requested_by == requested_by)
        .order_by(VerificationJob.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()

"""Every query the catalogue runs (search has its own module, ``search.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from haihe.catalogue.models import Load, Resource, ResourceChange, ResourceRelation, ResourceStatus
from haihe.core.auth import Principal, Role
from haihe.orgs.models import Organisation


def visible_to(actor: Principal, columns: Any = Resource) -> ColumnElement[bool] | None:
    """``service.can_view`` as SQL over ``columns`` (status, provider_id); None: no condition.

    Drafts are for their provider, the platform admin and auditors; the rest for everyone.
    """
    if actor.is_platform_admin or actor.has(Role.AUDITOR):
        return None
    published = columns.status != ResourceStatus.DRAFT.value
    if actor.org_id is None:
        return published
    return or_(published, columns.provider_id == actor.org_id)


def resource_by_code(session: Session, code: str) -> Resource | None:
    return session.scalars(select(Resource).where(Resource.code == code)).first()


def resources_by_codes(session: Session, codes: Sequence[str]) -> Sequence[Resource]:
    if not codes:
        return []
    return session.scalars(select(Resource).where(Resource.code.in_(codes))).all()


def next_sequence(session: Session, classification_code: str) -> int:
    stmt = select(func.max(Resource.sequence)).where(
        Resource.classification_code == classification_code
    )
    return (session.scalar(stmt) or 0) + 1


def provider_of(session: Session, resource: Resource) -> Organisation:
    org = session.get(Organisation, resource.provider_id)
    assert org is not None  # a foreign key guarantees it
    return org


def related_codes(session: Session, resource_id: int) -> list[str]:
    stmt = (
        select(Resource.code)
        .join(ResourceRelation, ResourceRelation.related_id == Resource.id)
        .where(ResourceRelation.resource_id == resource_id)
        .order_by(Resource.code)
    )
    return list(session.scalars(stmt))


def set_related(session: Session, resource: Resource, related: Sequence[Resource]) -> None:
    session.query(ResourceRelation).filter(ResourceRelation.resource_id == resource.id).delete()
    for other in related:
        session.add(ResourceRelation(resource_id=resource.id, related_id=other.id))


def changes_of(session: Session, resource_id: int, *, limit: int) -> Sequence[ResourceChange]:
    stmt = (
        select(ResourceChange)
        .where(ResourceChange.resource_id == resource_id)
        .order_by(ResourceChange.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()


def loads_of(session: Session, resource_id: int, *, limit: int) -> Sequence[Load]:
    stmt = select(Load).where(Load.resource_id == resource_id).order_by(Load.id.desc()).limit(limit)
    return session.scalars(stmt).all()


def load_by_id(session: Session, resource_id: int, load_id: int) -> Load | None:
    stmt = select(Load).where(Load.resource_id == resource_id, Load.id == load_id)
    return session.scalars(stmt).first()


def count_resources(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Resource)) or 0

"""Every query the portal runs (package_search builds its own, in ``search``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from haihe.catalogue.models import Resource
from haihe.orgs.models import Organisation, User
from haihe.portal.models import (
    ApiKey,
    Application,
    ApplicationStatus,
    Dataset,
    DatasetState,
    DatasetTag,
    UsageDay,
)

ACTIVE = DatasetState.ACTIVE


def dataset_by_ref(session: Session, ref: str) -> Dataset | None:
    """The dataset whose CKAN id or name is ``ref``."""
    stmt = select(Dataset).where(or_(Dataset.uuid == ref, Dataset.name == ref))
    return session.scalars(stmt).first()


def dataset_by_resource_uuid(session: Session, ref: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.resource_uuid == ref)).first()


def datasets_by_resource_uuids(session: Session, refs: Sequence[str]) -> Sequence[Dataset]:
    stmt = select(Dataset).where(Dataset.resource_uuid.in_(refs), Dataset.state == ACTIVE)
    return session.scalars(stmt).all()


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None


def active_names(session: Session, *, limit: int | None, offset: int) -> list[str]:
    stmt = select(Dataset.name).where(Dataset.state == ACTIVE).order_by(Dataset.name)
    stmt = stmt.offset(offset) if limit is None else stmt.limit(limit).offset(offset)
    return list(session.scalars(stmt).all())


def active_datasets(session: Session) -> Sequence[Dataset]:
    stmt = select(Dataset).where(Dataset.state == ACTIVE).order_by(Dataset.name)
    return session.scalars(stmt).all()


def datasets_of_resource(session: Session, resource_id: int) -> Sequence[Dataset]:
    return session.scalars(
        select(Dataset).where(Dataset.resource_id == resource_id).order_by(Dataset.name)
    ).all()


def stale_datasets(session: Session) -> Sequence[Dataset]:
    """Active datasets whose resource has a newer current version than they were made from."""
    stmt = (
        select(Dataset)
        .join(Resource, Resource.id == Dataset.resource_id)
        .where(
            Dataset.state == ACTIVE,
            Resource.current_version.is_not(None),
            or_(
                Dataset.source_version.is_(None),
                Dataset.source_version != Resource.current_version,
            ),
        )
        .order_by(Dataset.id)
    )
    return session.scalars(stmt).all()


def list_datasets(
    session: Session, *, org_id: int | None, state: DatasetState | None, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    stmt = select(Dataset)
    if org_id is not None:
        stmt = stmt.where(Dataset.org_id == org_id)
    if state is not None:
        stmt = stmt.where(Dataset.state == state)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Dataset.name).limit(limit).offset(offset)).all()
    return rows, total


def newest(session: Session, limit: int) -> Sequence[Dataset]:
    stmt = select(Dataset).where(Dataset.state == ACTIVE)
    return session.scalars(
        stmt.order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(limit)
    ).all()


def most_used(session: Session, limit: int) -> Sequence[Dataset]:
    used = Dataset.views_total + Dataset.downloads_total + Dataset.api_calls_total
    stmt = select(Dataset).where(Dataset.state == ACTIVE)
    return session.scalars(stmt.order_by(used.desc(), Dataset.name).limit(limit)).all()


def total_rows(session: Session) -> int:
    """Rows of every active dataset together."""
    stmt = select(func.sum(Dataset.row_count)).where(Dataset.state == ACTIVE)
    return int(session.scalar(stmt) or 0)


def topic_counts(session: Session) -> dict[str, int]:
    stmt = (
        select(Dataset.topic, func.count()).where(Dataset.state == ACTIVE).group_by(Dataset.topic)
    )
    return {topic: int(n) for topic, n in session.execute(stmt).all()}


def provider_counts(session: Session) -> list[tuple[Organisation, int]]:
    """Organisations with active datasets, with how many, by code."""
    n = func.count(Dataset.id)
    stmt = (
        select(Organisation, n)
        .join(Dataset, Dataset.org_id == Organisation.id)
        .where(Dataset.state == ACTIVE)
        .group_by(Organisation.id)
        .order_by(Organisation.code)
    )
    return [(org, int(count)) for org, count in session.execute(stmt).all()]


def org_names_by_codes_ci(session: Session, keys: Sequence[str]) -> dict[str, str]:
    """Chinese names of the organisations whose lower-cased codes are ``keys``, by that key."""
    if not keys:
        return {}
    key = func.lower(Organisation.code)
    stmt = select(key, Organisation.name_zh).where(key.in_(list(keys)))
    return {str(k): str(name) for k, name in session.execute(stmt).all()}


def orgs_by_ids(session: Session, ids: set[int]) -> dict[int, Organisation]:
    if not ids:
        return {}
    rows = session.scalars(select(Organisation).where(Organisation.id.in_(ids))).all()
    return {o.id: o for o in rows}


def resources_by_ids(session: Session, ids: set[int]) -> dict[int, Resource]:
    """The catalogue entries ``ids``, by id; their items are loaded only when read (a page of
    search results needs just each entry's code and steward)."""
    if not ids:
        return {}
    stmt = select(Resource).where(Resource.id.in_(ids)).options(lazyload(Resource.items))
    rows = session.scalars(stmt).all()
    return {r.id: r for r in rows}


def tag_counts(session: Session, *, q: str | None, limit: int | None, offset: int) -> list[str]:
    stmt = (
        select(DatasetTag.tag)
        .join(Dataset, Dataset.id == DatasetTag.dataset_id)
        .where(Dataset.state == ACTIVE)
        .group_by(DatasetTag.tag)
        .order_by(DatasetTag.tag)
    )
    if q:
        stmt = stmt.where(DatasetTag.tag.contains(q, autoescape=True))
    stmt = stmt.offset(offset) if limit is None else stmt.limit(limit).offset(offset)
    return list(session.scalars(stmt).all())


def datasets_by_ids(session: Session, ids: Sequence[int]) -> list[Dataset]:
    """The datasets ``ids``, in that order."""
    if not ids:
        return []
    found = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(ids))).all()}
    return [found[i] for i in ids if i in found]


# ---------------------------------------------------------------- applications and keys


def application(session: Session, app_id: int) -> Application | None:
    return session.get(Application, app_id)


def open_application(session: Session, dataset_id: int, user_id: int) -> Application | None:
    """The user's pending or approved application for a dataset, if any."""
    stmt = select(Application).where(
        Application.dataset_id == dataset_id,
        Application.user_id == user_id,
        Application.status.in_([ApplicationStatus.PENDING, ApplicationStatus.APPROVED]),
    )
    return session.scalars(stmt).first()


def approved(session: Session, dataset_id: int, user_id: int) -> bool:
    stmt = select(Application.id).where(
        Application.dataset_id == dataset_id,
        Application.user_id == user_id,
        Application.status == ApplicationStatus.APPROVED,
    )
    return session.scalar(stmt.limit(1)) is not None


def approved_dataset_ids(session: Session, user_id: int) -> set[int]:
    stmt = select(Application.dataset_id).where(
        Application.user_id == user_id, Application.status == ApplicationStatus.APPROVED
    )
    return set(session.scalars(stmt).all())


def list_applications(
    session: Session,
    *,
    user_id: int | None,
    org_id: int | None,
    status: ApplicationStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Application, Dataset, User]], int]:
    stmt = (
        select(Application, Dataset, User)
        .join(Dataset, Dataset.id == Application.dataset_id)
        .join(User, User.id == Application.user_id)
    )
    if user_id is not None:
        stmt = stmt.where(Application.user_id == user_id)
    if org_id is not None:
        stmt = stmt.where(Dataset.org_id == org_id)
    if status is not None:
        stmt = stmt.where(Application.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(Application.submitted_at.desc(), Application.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(a, d, u) for a, d, u in rows], total


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def api_key_by_digest(session: Session, digest: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.digest == digest)).first()


def api_key(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def api_keys_of(session: Session, user_id: int) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)
    ).all()


# ---------------------------------------------------------------- usage


USAGE_COLUMNS = ("views", "downloads", "api_calls")


def bump_usage(session: Session, *, dataset_id: int, day: dt.date, what: str, n: int = 1) -> None:
    """Add ``n`` to a dataset's counter ``what`` for ``day`` and to its running total."""
    values: dict[str, Any] = {"dataset_id": dataset_id, "day": day}
    values.update({c: (n if c == what else 0) for c in USAGE_COLUMNS})
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(UsageDay).values(**values)
    target = getattr(UsageDay, what)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["dataset_id", "day"], set_={what: target + n})
    )
    total = getattr(Dataset, f"{what}_total")
    session.execute(update(Dataset).where(Dataset.id == dataset_id).values({total: total + n}))


def usage_by(
    session: Session, *, by: str, start: dt.date, end: dt.date, org_id: int | None
) -> list[tuple[str, int, int, int]]:
    """Sums of views, downloads and API calls from ``start`` to ``end`` by dataset name, topic
    or day, most used first (by day: in order)."""
    key = {"dataset": Dataset.name, "topic": Dataset.topic, "day": UsageDay.day}[by]
    views, downloads, calls = (
        func.sum(UsageDay.views),
        func.sum(UsageDay.downloads),
        func.sum(UsageDay.api_calls),
    )
    stmt = (
        select(key, views, downloads, calls)
        .join(Dataset, Dataset.id == UsageDay.dataset_id)
        .where(UsageDay.day >= start, UsageDay.day <= end)
        .group_by(key)
    )
    if org_id is not None:
        stmt = stmt.where(Dataset.org_id == org_id)
    order = [key] if by == "day" else [(views + downloads + calls).desc(), key]
    return [
        (str(k), int(v or 0), int(d or 0), int(c or 0))
        for k, v, d, c in session.execute(stmt.order_by(*order)).all()
    ]


def usage_of(session: Session, dataset_id: int, start: dt.date) -> list[UsageDay]:
    stmt = (
        select(UsageDay)
        .where(UsageDay.dataset_id == dataset_id, UsageDay.day >= start)
        .order_by(UsageDay.day)
    )
    return list(session.scalars(stmt).all())

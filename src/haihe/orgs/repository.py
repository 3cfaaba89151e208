"""Every query the members domain runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from haihe.core.auth import Role
from haihe.orgs.models import (
    ApiClient,
    AuthToken,
    InformationSystem,
    Organisation,
    OrgKind,
    User,
    UserRole,
)


def org_by_code(session: Session, code: str) -> Organisation | None:
    return session.scalars(select(Organisation).where(Organisation.code == code)).first()


def org_by_id(session: Session, org_id: int) -> Organisation | None:
    return session.get(Organisation, org_id)


def org_by_credit_code(session: Session, credit_code: str) -> Organisation | None:
    stmt = select(Organisation).where(Organisation.credit_code == credit_code)
    return session.scalars(stmt).first()


def list_orgs(
    session: Session,
    *,
    kind: OrgKind | None,
    parent_id: int | None,
    q: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Organisation], int]:
    stmt = select(Organisation)
    if kind is not None:
        stmt = stmt.where(Organisation.kind == kind)
    if parent_id is not None:
        stmt = stmt.where(Organisation.parent_id == parent_id)
    if active is not None:
        stmt = stmt.where(Organisation.active == active)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(
                Organisation.code.ilike(like),
                Organisation.name_zh.ilike(like),
                Organisation.name_en.ilike(like),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Organisation.code).limit(limit).offset(offset)).all()
    return rows, total


def ancestors_of(session: Session, org: Organisation) -> list[Organisation]:
    """The chain of parents from ``org``'s parent up to the root."""
    chain: list[Organisation] = []
    current = org.parent
    while current is not None and len(chain) < 16:
        chain.append(current)
        current = current.parent
    return chain


def system_by_code(session: Session, org_id: int, code: str) -> InformationSystem | None:
    stmt = select(InformationSystem).where(
        InformationSystem.org_id == org_id, InformationSystem.code == code
    )
    return session.scalars(stmt).first()


def systems_of(session: Session, org_id: int) -> Sequence[InformationSystem]:
    stmt = (
        select(InformationSystem)
        .where(InformationSystem.org_id == org_id)
        .order_by(InformationSystem.code)
    )
    return session.scalars(stmt).all()


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def user_by_subject_token(session: Session, token: str) -> User | None:
    return session.scalars(select(User).where(User.subject_token == token)).first()


def list_users(
    session: Session, *, org_id: int | None, q: str | None, limit: int, offset: int
) -> tuple[Sequence[User], int]:
    stmt = select(User)
    if org_id is not None:
        stmt = stmt.where(User.org_id == org_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.ilike(like), User.display_name.ilike(like)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(User.username).limit(limit).offset(offset)).all()
    return rows, total


def count_active_with_role(session: Session, role: Role, *, except_user_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == role, User.active.is_(True), User.id != except_user_id)
    )
    return session.scalar(stmt) or 0


def client_by_client_id(session: Session, client_id: str) -> ApiClient | None:
    return session.scalars(select(ApiClient).where(ApiClient.client_id == client_id)).first()


def list_clients(
    session: Session, *, org_id: int | None, limit: int, offset: int
) -> tuple[Sequence[ApiClient], int]:
    stmt = select(ApiClient)
    if org_id is not None:
        stmt = stmt.where(ApiClient.org_id == org_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(ApiClient.client_id).limit(limit).offset(offset)).all()
    return rows, total


def live_token(session: Session, token_hash: str, now: dt.datetime) -> AuthToken | None:
    stmt = select(AuthToken).where(
        AuthToken.token_hash == token_hash,
        AuthToken.revoked_at.is_(None),
        AuthToken.expires_at > now,
    )
    return session.scalars(stmt).first()


def token_by_hash(session: Session, token_hash: str) -> AuthToken | None:
    return session.scalars(select(AuthToken).where(AuthToken.token_hash == token_hash)).first()


def revoke_tokens(
    session: Session,
    *,
    user_id: int | None = None,
    client_id: int | None = None,
    now: dt.datetime,
) -> None:
    """Revoke every live token of a user or a client (after a password or secret change)."""
    stmt = select(AuthToken).where(AuthToken.revoked_at.is_(None), AuthToken.expires_at > now)
    if user_id is not None:
        stmt = stmt.where(AuthToken.user_id == user_id)
    if client_id is not None:
        stmt = stmt.where(AuthToken.client_id == client_id)
    for token in session.scalars(stmt):
        token.revoked_at = now


def count_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Organisation.kind, func.count()).group_by(Organisation.kind)
    ).all()
    return {kind.value: n for kind, n in rows}

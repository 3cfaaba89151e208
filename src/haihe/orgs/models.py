"""Members of the platform — 成员单位: organisations, their systems, users, API clients, tokens."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from haihe.core.auth import Role
from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class OrgKind(StrEnum):
    """Kinds of organisation — 单位类型."""

    CITY = "city"  # 市
    MUNICIPAL_DEPARTMENT = "municipal_department"  # 市级部门
    DISTRICT = "district"  # 区
    INSTITUTION = "institution"  # 公共服务机构
    STREET = "street"  # 街道/乡镇
    COMMUNITY = "community"  # 社区/村
    ENTERPRISE = "enterprise"  # 企业


# Which kind of parent each kind may have (None: no parent). The administrative chain is
# city → district → street → community; departments and institutions hang off the city or a
# district.
ALLOWED_PARENTS: dict[OrgKind, frozenset[OrgKind | None]] = {
    OrgKind.CITY: frozenset({None}),
    OrgKind.DISTRICT: frozenset({OrgKind.CITY}),
    OrgKind.STREET: frozenset({OrgKind.DISTRICT}),
    OrgKind.COMMUNITY: frozenset({OrgKind.STREET}),
    OrgKind.MUNICIPAL_DEPARTMENT: frozenset({OrgKind.CITY, OrgKind.DISTRICT, None}),
    OrgKind.INSTITUTION: frozenset({OrgKind.CITY, OrgKind.DISTRICT, None}),
    OrgKind.ENTERPRISE: frozenset({None, OrgKind.CITY, OrgKind.DISTRICT}),
}


class Organisation(Base):
    """Organisation — 单位: a department, district, institution, street, community or enterprise."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind, "org_kind"), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    region_code: Mapped[str | None] = mapped_column(String(12), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id], lazy="joined")


class InformationSystem(Base):
    """Information system — 信息系统: the unit inside an organisation that is granted access."""

    __tablename__ = "information_systems"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Organisation] = relationship(lazy="joined")


class User(Base):
    """User — 用户: a person who signs in to the console or calls the API with a token."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    language: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The keyed pseudonym of the resident's ID number (never the number): whose records the
    # audit ledger shows this user on the "my data" page.
    subject_token: Mapped[str | None] = mapped_column(String(32), index=True)

    org: Mapped[Organisation | None] = relationship(lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserRole.role"
    )

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(r.role for r in self.role_rows)


class UserRole(Base):
    """A role held by a user within the user's organisation."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"), primary_key=True)


class ApiClient(Base):
    """API client — 接入应用: a machine caller acting for an organisation (and one of its systems).

    Only a SHA-256 hash of the secret is stored: secrets are 256-bit random strings, so a slow
    password hash would add latency and no strength.
    """

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    system_id: Mapped[int | None] = mapped_column(
        ForeignKey("information_systems.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    org: Mapped[Organisation] = relationship(lazy="joined")
    system: Mapped[InformationSystem | None] = relationship(lazy="joined")


class TokenKind(StrEnum):
    API = "api"  # bearer token for the REST API
    SESSION = "session"  # console login session (cookie)


class AuthToken(Base):
    """An issued bearer token or console session; the token itself is stored only as SHA-256."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[TokenKind] = mapped_column(str_enum(TokenKind, "token_kind"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_clients.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship(lazy="joined")
    client: Mapped[ApiClient | None] = relationship(lazy="joined")

"""Tables of the exchange: requests, grants, their daily usage, bulk exports and change
subscriptions. (The working-day calendar is the kit's: ``haihe.core.calendar``.)

Items, modes and row scope are JSON lists: ``items`` are data-item names of the resource,
``modes`` are ``SharingMode`` values, ``scope`` is a list of conditions (see ``scope.py``) that
every row delivered under the grant must meet.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class RequestStatus(StrEnum):
    """Where an access request stands — 申请状态."""

    PENDING = "pending"  # 待审批
    APPROVED = "approved"  # 已同意
    REFUSED = "refused"  # 已拒绝
    WITHDRAWN = "withdrawn"  # 已撤回


class GrantStatus(StrEnum):
    """Whether a grant is in force — 授权状态."""

    ACTIVE = "active"  # 有效
    REVOKED = "revoked"  # 已撤销
    EXPIRED = "expired"  # 已过期


class GrantBasis(StrEnum):
    """Why a grant exists — 授权依据."""

    UNCONDITIONAL = "unconditional"  # 无条件共享: granted on request
    APPROVED = "approved"  # 有条件共享: the provider approved
    LEGAL_BASIS = "legal_basis"  # 不予共享: the platform admin recorded a legal basis


class ExportStatus(StrEnum):
    """Where a bulk export job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class AccessRequest(Base):
    """A consumer's request to use a resource — 共享申请."""

    __tablename__ = "exchange_requests"
    __table_args__ = (Index("ix_exchange_requests_status_due", "status", "due_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="RESTRICT"), index=True
    )
    consumer_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    consumer_system_id: Mapped[int | None] = mapped_column(
        ForeignKey("information_systems.id", ondelete="RESTRICT")
    )
    requested_by: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str] = mapped_column(Text)
    scenario: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    duration_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "request_status"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_note: Mapped[str | None] = mapped_column(Text)
    # The grant this request renews. No foreign key: grants already point at their requests,
    # and a cycle of keys would make the two tables impossible to order for deletes.
    renews_grant_id: Mapped[int | None] = mapped_column(Integer)


class Grant(Base):
    """What the gateway enforces on every call — 共享授权."""

    __tablename__ = "exchange_grants"
    __table_args__ = (
        Index("ix_exchange_grants_consumer_resource", "consumer_org_id", "resource_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("exchange_requests.id", ondelete="SET NULL"), index=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="RESTRICT"), index=True
    )
    consumer_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT")
    )
    consumer_system_id: Mapped[int | None] = mapped_column(
        ForeignKey("information_systems.id", ondelete="RESTRICT")
    )
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    unmasked_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str] = mapped_column(Text)
    calls_per_day: Mapped[int | None] = mapped_column(Integer)
    rows_per_day: Mapped[int | None] = mapped_column(BigInteger)
    basis: Mapped[GrantBasis] = mapped_column(str_enum(GrantBasis, "grant_basis"))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    status: Mapped[GrantStatus] = mapped_column(str_enum(GrantStatus, "grant_status"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class GrantUsage(Base):
    """Calls and rows used under a grant on one day (Asia/Shanghai), for its quotas."""

    __tablename__ = "exchange_grant_usage"

    grant_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_grants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)


class ExportJob(Base):
    """A bulk export under a grant — 批量导出: a file for the grantee only, until it expires."""

    __tablename__ = "exchange_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_grants.id", ondelete="CASCADE"), index=True
    )
    resource_code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[ExportStatus] = mapped_column(str_enum(ExportStatus, "export_status"))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Subscription(Base):
    """A grantee's subscription to a resource's changes — 订阅: a feed, optionally a webhook."""

    __tablename__ = "exchange_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("exchange_grants.id", ondelete="CASCADE"), index=True
    )
    callback_url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))

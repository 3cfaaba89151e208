"""The open-data portal's tables: datasets, their tags, applications, API keys and usage."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from haihe.catalogue.models import OpenType, UpdateCycle
from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class DatasetState(StrEnum):
    """Life of an open dataset: active (listed and served) or withdrawn (gone from the portal)."""

    ACTIVE = "active"  # 已开放
    WITHDRAWN = "withdrawn"  # 已撤回


class ApplicationStatus(StrEnum):
    """An application for a 有条件开放 dataset — 开放申请."""

    PENDING = "pending"  # 待审核
    APPROVED = "approved"  # 已通过
    REFUSED = "refused"  # 未通过
    WITHDRAWN = "withdrawn"  # 已撤回


class Dataset(Base):
    """Open dataset — 开放数据集: a catalogue resource, or a view of it, opened to the public.

    ``uuid`` is its CKAN id and ``name`` its CKAN name; ``resource_uuid`` is the id of the one
    CKAN resource backed by the datastore. ``view`` says what of the catalogue resource is
    opened (items, row filter, aggregation, masking); its data is materialised into the portal's
    own store (``data_version``) from version ``source_version`` of the resource.
    """

    __tablename__ = "portal_datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    resource_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(300))
    notes_zh: Mapped[str] = mapped_column(Text, default="")
    notes_en: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="RESTRICT"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    topic: Mapped[str] = mapped_column(String(32), index=True)
    open_type: Mapped[OpenType] = mapped_column(str_enum(OpenType, "open_type"), index=True)
    licence_id: Mapped[str] = mapped_column(String(64))
    update_frequency: Mapped[UpdateCycle] = mapped_column(str_enum(UpdateCycle, "update_cycle"))
    view: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    terms: Mapped[str | None] = mapped_column(Text)
    state: Mapped[DatasetState] = mapped_column(
        str_enum(DatasetState, "portal_dataset_state"), index=True
    )
    source_version: Mapped[int | None] = mapped_column(Integer)
    data_version: Mapped[int | None] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(Integer)
    data_bytes: Mapped[int | None] = mapped_column(BigInteger)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    formats: Mapped[str] = mapped_column(String(64), default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    views_total: Mapped[int] = mapped_column(Integer, default=0)
    downloads_total: Mapped[int] = mapped_column(Integer, default=0)
    api_calls_total: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    data_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    tags: Mapped[list[DatasetTag]] = relationship(
        cascade="all, delete-orphan", order_by="DatasetTag.tag", lazy="selectin"
    )


class DatasetTag(Base):
    """A tag of a dataset — 标签."""

    __tablename__ = "portal_dataset_tags"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("portal_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Application(Base):
    """Application — 开放申请 — by a registered user for a 有条件开放 dataset."""

    __tablename__ = "portal_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("portal_datasets.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    accepted_terms: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ApplicationStatus] = mapped_column(
        str_enum(ApplicationStatus, "portal_application_status"), index=True
    )
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[dt.date] = mapped_column(Date)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """API key — 接口密钥 — of a portal user; only its SHA-256 digest is kept."""

    __tablename__ = "portal_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_on: Mapped[dt.date | None] = mapped_column(Date)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class UsageDay(Base):
    """Usage of one dataset on one day (city time) — 使用统计: views, downloads, API calls."""

    __tablename__ = "portal_usage"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("portal_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True, index=True)
    views: Mapped[int] = mapped_column(Integer, default=0)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)

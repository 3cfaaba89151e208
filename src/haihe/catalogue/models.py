"""The resource catalogue — 政务信息资源目录 (GB/T 21063): entries, items, loads, history."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class BaseLibrary(StrEnum):
    """The five base libraries — 基础信息资源库 — with their classification codes."""

    POPULATION = "population"  # 人口
    LEGAL_ENTITY = "legal_entity"  # 法人单位
    GEOSPATIAL = "geospatial"  # 自然资源和空间地理
    SOCIAL_CREDIT = "social_credit"  # 社会信用
    E_LICENCE = "e_licence"  # 电子证照


class SharingType(StrEnum):
    """Sharing type — 共享类型."""

    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


class OpenType(StrEnum):
    """Open type — 开放类型."""

    UNCONDITIONAL = "unconditional"  # 无条件开放
    CONDITIONAL = "conditional"  # 有条件开放
    NOT_OPEN = "not_open"  # 不予开放


class SharingMode(StrEnum):
    """How a consumer may use a resource — 共享方式."""

    QUERY = "query"  # 查询
    VERIFY = "verify"  # 核验
    BULK = "bulk"  # 批量交换
    SUBSCRIBE = "subscribe"  # 订阅


class UpdateCycle(StrEnum):
    """Update cycle — 更新周期."""

    REALTIME = "realtime"  # 实时
    DAILY = "daily"  # 每日
    WEEKLY = "weekly"  # 每周
    MONTHLY = "monthly"  # 每月
    QUARTERLY = "quarterly"  # 每季度
    YEARLY = "yearly"  # 每年
    IRREGULAR = "irregular"  # 不定期


class ResourceStatus(StrEnum):
    """Life of an entry — 状态: draft → published → retired."""

    DRAFT = "draft"  # 草稿
    PUBLISHED = "published"  # 已发布
    RETIRED = "retired"  # 已停用


class Sensitivity(StrEnum):
    """Sensitivity level of a data item — 敏感级别, L1 (public) to L4 (most sensitive)."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


class ItemKind(StrEnum):
    """What a data item holds, for validation and masking."""

    ID_NUMBER = "id_number"  # 身份证号
    NAME = "name"  # 姓名
    PHONE = "phone"  # 电话
    ADDRESS = "address"  # 地址
    USCC = "uscc"  # 统一社会信用代码
    PLATE = "plate"  # 号牌
    GENERIC = "generic"


class Resource(Base):
    """Resource — 信息资源: one catalogue entry, provided by one organisation."""

    __tablename__ = "catalogue_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    classification_code: Mapped[str] = mapped_column(String(16), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(300))
    summary_zh: Mapped[str] = mapped_column(Text)
    summary_en: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    base_library: Mapped[BaseLibrary | None] = mapped_column(
        str_enum(BaseLibrary, "base_library"), index=True
    )
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(32))
    sharing_type: Mapped[SharingType] = mapped_column(
        str_enum(SharingType, "sharing_type"), index=True
    )
    sharing_conditions: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    sharing_modes: Mapped[list[str]] = mapped_column(JSON, default=list)
    open_type: Mapped[OpenType] = mapped_column(str_enum(OpenType, "open_type"), index=True)
    open_conditions: Mapped[str | None] = mapped_column(Text)
    update_cycle: Mapped[UpdateCycle] = mapped_column(str_enum(UpdateCycle, "update_cycle"))
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[ResourceStatus] = mapped_column(
        str_enum(ResourceStatus, "resource_status"), index=True
    )
    steward_name: Mapped[str | None] = mapped_column(String(100))
    steward_contact: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    current_version: Mapped[int | None] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(Integer)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[DataItem]] = relationship(
        cascade="all, delete-orphan",
        order_by="DataItem.position",
        lazy="selectin",
    )


class DataItem(Base):
    """Data item — 信息项: one column of a resource."""

    __tablename__ = "catalogue_items"
    __table_args__ = (UniqueConstraint("resource_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    is_key: Mapped[bool] = mapped_column(Boolean, default=False)
    nullable: Mapped[bool] = mapped_column(Boolean, default=True)
    sensitivity: Mapped[Sensitivity] = mapped_column(str_enum(Sensitivity, "sensitivity"))
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind, "item_kind"))
    description: Mapped[str | None] = mapped_column(Text)


class ResourceRelation(Base):
    """A related resource — 关联资源 (directed: ``resource`` refers to ``related``)."""

    __tablename__ = "catalogue_relations"

    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), primary_key=True
    )
    related_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), primary_key=True
    )


class LoadStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Load(Base):
    """One load of data into a resource — 数据归集: what was read, kept and rejected, by whom."""

    __tablename__ = "catalogue_loads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[LoadStatus] = mapped_column(str_enum(LoadStatus, "load_status"))
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejects_path: Mapped[str | None] = mapped_column(String(500))
    checksum: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ResourceChange(Base):
    """History of an entry — 变更记录: who changed what, when, with the before and after."""

    __tablename__ = "catalogue_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

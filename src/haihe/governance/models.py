"""Tables of grid governance: areas (districts → streets → communities → grid cells), grid
workers, categories, events with their append-only history, photos, whistles, notifications
and Open311 API keys."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class AreaLevel(StrEnum):
    """Levels of the grid map and of the chain of command — 层级."""

    CITY = "city"  # 市
    DISTRICT = "district"  # 区
    STREET = "street"  # 街道/镇
    COMMUNITY = "community"  # 社区/村
    CELL = "cell"  # 网格


class EventSource(StrEnum):
    """Where an event came from — 事件来源."""

    RESIDENT = "resident"  # 居民上报
    GRID_WORKER = "grid_worker"  # 网格员巡查
    HOTLINE_12345 = "hotline_12345"  # 12345 热线
    SENSOR = "sensor"  # 物联感知
    PLATFORM = "platform"  # 其他平台


class EventStatus(StrEnum):
    """Where an event stands in its workflow — 事件状态."""

    REPORTED = "reported"  # 已上报
    ACCEPTED = "accepted"  # 已受理
    DISPATCHED = "dispatched"  # 已派遣
    IN_PROGRESS = "in_progress"  # 处置中
    RETURNED = "returned"  # 已退回
    ESCALATED = "escalated"  # 已上报上级
    RESOLVED = "resolved"  # 已办结
    EVALUATED = "evaluated"  # 已评价
    CLOSED = "closed"  # 已结案


class SummonsStatus(StrEnum):
    """Where one department's answer to a whistle stands — 报到状态."""

    SUMMONED = "summoned"  # 已吹哨
    REPORTED = "reported"  # 已报到反馈


class NoticeKind(StrEnum):
    """Why a notification was written — 提醒类型."""

    REMINDER = "reminder"  # 临期提醒
    OVERDUE = "overdue"  # 超期
    SUPERVISION = "supervision"  # 督办
    SUMMONS = "summons"  # 吹哨


class Area(Base):
    """An area of the grid map — 区域/网格: a district, street, community or grid cell.

    ``geometry`` is the GeoJSON geometry (Polygon or MultiPolygon, WGS 84); a cell keeps the ids
    of its community, street and district so that an event is placed in all four at once.
    """

    __tablename__ = "governance_areas"
    __table_args__ = (Index("ix_governance_areas_level_code", "level", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel, "governance_area_level"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("governance_areas.id", ondelete="RESTRICT"), index=True
    )
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    district_id: Mapped[int | None] = mapped_column(Integer, index=True)
    street_id: Mapped[int | None] = mapped_column(Integer, index=True)
    community_id: Mapped[int | None] = mapped_column(Integer, index=True)
    geometry: Mapped[str] = mapped_column(Text)
    min_lng: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lng: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    centre_lng: Mapped[float] = mapped_column(Float)
    centre_lat: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GridRevision(Base):
    """One row counting changes to the grid map, so every process knows when to rebuild its
    point-in-cell index."""

    __tablename__ = "governance_grid_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CellWorker(Base):
    """A grid worker (网格员) assigned to a cell."""

    __tablename__ = "governance_cell_workers"

    cell_id: Mapped[int] = mapped_column(
        ForeignKey("governance_areas.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Category(Base):
    """An event category — 事件类别, with who handles it by default and how fast."""

    __tablename__ = "governance_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    group_zh: Mapped[str | None] = mapped_column(String(100))
    group_en: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[str | None] = mapped_column(String(300))
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel, "governance_area_level"))
    department_code: Mapped[str | None] = mapped_column(String(64))
    # One of the two is set: hours for urgent categories, working days (工作日) for the rest.
    deadline_hours: Mapped[int | None] = mapped_column(Integer)
    deadline_working_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Event(Base):
    """An event — 事件: something wrong in a grid cell, reported, handled and evaluated."""

    __tablename__ = "governance_events"
    __table_args__ = (
        Index("ix_governance_events_status_due", "status", "due_at"),
        Index("ix_governance_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[EventSource] = mapped_column(str_enum(EventSource, "governance_source"))
    category_code: Mapped[str] = mapped_column(
        ForeignKey("governance_categories.code", ondelete="RESTRICT"), index=True
    )
    status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus, "governance_status"))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(300))
    lng: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    cell_id: Mapped[int] = mapped_column(ForeignKey("governance_areas.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(Integer, index=True)
    street_id: Mapped[int | None] = mapped_column(Integer, index=True)
    district_id: Mapped[int | None] = mapped_column(Integer, index=True)
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel, "governance_area_level"))
    command_code: Mapped[str | None] = mapped_column(String(64), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(64), index=True)
    unit_level: Mapped[AreaLevel | None] = mapped_column(
        str_enum(AreaLevel, "governance_area_level")
    )
    reporter_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reporter_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_clients.id", ondelete="SET NULL")
    )
    reporter_name: Mapped[str | None] = mapped_column(String(100))
    reporter_contact: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str | None] = mapped_column(Text)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    status_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The wall-clock time of the row's last write, whatever the change (``updated_at`` may be
    # set to the time a step happened): the statistics snapshot reads what changed after it.
    changed_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )


class EventStep(Base):
    """One step in an event's history — 流转记录 (append-only: rows are never changed)."""

    __tablename__ = "governance_event_steps"
    __table_args__ = (UniqueConstraint("event_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("governance_events.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[EventStatus | None] = mapped_column(
        str_enum(EventStatus, "governance_status")
    )
    to_status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus, "governance_status"))
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel, "governance_area_level"))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_name: Mapped[str] = mapped_column(String(100))
    actor_org: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Photo(Base):
    """A photo of an event, stored under DATA_DIR/governance/photos after Pillow decoded it."""

    __tablename__ = "governance_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("governance_events.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Whistle(Base):
    """A whistle — 吹哨: a street summoning departments to report for duty on an event."""

    __tablename__ = "governance_whistles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("governance_events.id", ondelete="CASCADE"), index=True
    )
    street_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    blown_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Summons(Base):
    """One department summoned by a whistle — 报到, with its own deadline and report-back."""

    __tablename__ = "governance_summons"
    __table_args__ = (
        UniqueConstraint("whistle_id", "department_code"),
        Index("ix_governance_summons_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    whistle_id: Mapped[int] = mapped_column(
        ForeignKey("governance_whistles.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("governance_events.id", ondelete="CASCADE"), index=True
    )
    department_code: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[SummonsStatus] = mapped_column(str_enum(SummonsStatus, "governance_summons"))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """A reminder, overdue notice or supervision order for an organisation — 提醒/督办."""

    __tablename__ = "governance_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind, "governance_notice"))
    org_code: Mapped[str | None] = mapped_column(String(64), index=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("governance_events.id", ondelete="CASCADE"), index=True
    )
    summons_id: Mapped[int | None] = mapped_column(
        ForeignKey("governance_summons.id", ondelete="CASCADE")
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Open311Key(Base):
    """An Open311 ``api_key`` — 接口密钥: stands for an orgs API client and the source it feeds.

    Only the SHA-256 of the key is kept (keys are 256-bit random strings).
    """

    __tablename__ = "governance_open311_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    source: Mapped[EventSource] = mapped_column(str_enum(EventSource, "governance_source"))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

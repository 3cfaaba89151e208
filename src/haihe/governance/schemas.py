"""Pydantic shapes of grid governance, in and out."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from haihe.governance.models import AreaLevel, EventSource, EventStatus, NoticeKind, SummonsStatus


class AreaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    level: AreaLevel
    name_zh: str
    name_en: str | None
    parent_code: str | None = None
    org_code: str | None = None
    bbox: tuple[float, float, float, float]
    centre: tuple[float, float]


class GridImportOut(BaseModel):
    level: AreaLevel
    created: int
    updated: int
    linked_to_orgs: int
    revision: int


class CategoryIn(BaseModel):
    """A category of events — 事件类别: names, default handling level and unit, deadline."""

    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    group_zh: str | None = Field(None, max_length=100)
    group_en: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)
    keywords: str | None = Field(None, max_length=300)
    level: AreaLevel = Field(description="Level whose command centre receives it: community, …")
    department_code: str | None = Field(
        None, max_length=64, description="Organisation code of the usual handling department."
    )
    deadline_hours: int | None = Field(
        None, ge=1, le=24 * 365, description="Hours from report to resolution (urgent ones)."
    )
    deadline_working_days: int | None = Field(
        None,
        ge=1,
        le=250,
        description="Working days from report to resolution: due at the end of that working "
        "day, China time, holidays and 调休 days taken from the city's calendar.",
    )
    active: bool = True

    @field_validator("level")
    @classmethod
    def _not_cell(cls, value: AreaLevel) -> AreaLevel:
        if value is AreaLevel.CELL:
            raise ValueError("a category is handled by a community, street, district or city")
        return value

    @model_validator(mode="after")
    def _one_deadline(self) -> CategoryIn:
        if (self.deadline_hours is None) == (self.deadline_working_days is None):
            raise ValueError("give the deadline as deadline_hours or deadline_working_days (one)")
        return self


class CategoryOut(CategoryIn):
    model_config = ConfigDict(from_attributes=True)

    code: str


class EventIn(BaseModel):
    """A new event. Give ``lng``/``lat`` (WGS 84), or an ``address`` naming a grid cell,
    community or street (the event is then placed at that area's centre)."""

    category_code: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=4000)
    source: EventSource | None = Field(
        None, description="Defaults from the caller: grid_worker, resident or platform."
    )
    lng: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    address: str | None = Field(None, max_length=300)
    reporter_name: str | None = Field(None, max_length=100)
    reporter_contact: str | None = Field(None, max_length=100)
    external_id: str | None = Field(None, max_length=64, description="The sender's own number.")


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    action: str
    from_status: EventStatus | None
    to_status: EventStatus
    level: AreaLevel
    unit_code: str | None
    actor_kind: str
    actor_name: str
    actor_org: str | None
    note: str | None
    at: dt.datetime


class PhotoOut(BaseModel):
    id: int
    url: str
    media_type: str
    bytes: int
    width: int
    height: int


class SummonsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    whistle_id: int
    department_code: str
    status: SummonsStatus
    due_at: dt.datetime
    overdue: bool
    report: str | None
    reported_by: str | None
    reported_at: dt.datetime | None


class EventOut(BaseModel):
    id: int
    token: str
    source: EventSource
    category_code: str
    category_name: str
    status: EventStatus
    description: str
    address: str | None
    lng: float
    lat: float
    cell_code: str
    community_code: str | None
    street_code: str | None
    district_code: str | None
    place_name: str
    level: AreaLevel
    command_code: str | None
    unit_code: str | None
    unit_level: AreaLevel | None
    due_at: dt.datetime
    overdue: bool
    supervised: bool
    rating: int | None
    feedback: str | None
    reopened: int
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    allowed_actions: list[str] = Field(description="What the caller may do next.")
    photos: list[PhotoOut] = []
    history: list[StepOut] = []
    summons: list[SummonsOut] = []


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


class ActionIn(BaseModel):
    """What an action needs: a note always may be given; dispatch and reassign name a unit,
    evaluate a rating."""

    note: str | None = Field(None, max_length=2000)
    level: AreaLevel | None = Field(None, description="dispatch: the level of the unit.")
    unit_code: str | None = Field(
        None, max_length=64, description="dispatch/reassign: the unit's organisation code."
    )
    rating: int | None = Field(None, ge=1, le=5, description="evaluate: 1 (poor) to 5 (good).")


class SummonIn(BaseModel):
    department_code: str = Field(min_length=1, max_length=64)
    hours: int = Field(24, ge=1, le=24 * 30, description="Deadline for reporting back.")


class WhistleIn(BaseModel):
    """Blow the whistle (吹哨): summon departments to report for duty (报到)."""

    reason: str = Field(min_length=1, max_length=2000)
    departments: list[SummonIn] = Field(min_length=1, max_length=20)


class ReportBackIn(BaseModel):
    report: str = Field(min_length=1, max_length=4000)


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: NoticeKind
    org_code: str | None
    event_id: int
    summons_id: int | None
    message: str
    created_at: dt.datetime


class Open311KeyIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64, description="The orgs API client.")
    source: EventSource = EventSource.HOTLINE_12345
    name: str = Field(min_length=1, max_length=200)


class Open311KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    client_id: str
    source: EventSource
    active: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class Open311KeyWithSecret(Open311KeyOut):
    api_key: str = Field(description="Shown once; only its hash is kept.")

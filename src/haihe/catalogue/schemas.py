"""What the catalogue takes in and gives out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from haihe.catalogue.models import (
    BaseLibrary,
    DataItem,
    ItemKind,
    Load,
    LoadStatus,
    OpenType,
    Resource,
    ResourceChange,
    ResourceStatus,
    Sensitivity,
    SharingMode,
    SharingType,
    UpdateCycle,
)
from haihe.catalogue.topics import TOPICS
from haihe.core.errors import InvalidInput
from haihe.engine.schema import arrow_type

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
ItemName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="Column name: lower-case letters, digits and '_', starting with a letter."),
]
FORMATS = ("table", "spreadsheet", "document", "image", "geospatial", "stream", "api")


def _portable_type(value: str) -> str:
    value = value.strip()
    try:
        arrow_type(value)
    except InvalidInput:
        raise ValueError(
            f"unknown type {value!r}; use string, int64, float64, bool, date32, "
            "timestamp[us], timestamp[us, UTC] or decimal(p,s)"
        ) from None
    return value


class ItemIn(BaseModel):
    """One data item as a provider describes it."""

    model_config = ConfigDict(extra="forbid")

    name: ItemName
    name_zh: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    name_en: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    type: str = Field("string", description="Portable type, e.g. string, int64, date32.")
    is_key: bool = False
    nullable: bool = True
    sensitivity: Sensitivity = Sensitivity.L1
    personal: bool = False
    kind: ItemKind = ItemKind.GENERIC
    description: LongText | None = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _portable_type(value)


class ResourceIn(BaseModel):
    """A catalogue entry as a provider describes it (the code is assigned on creation)."""

    model_config = ConfigDict(extra="forbid")

    name_zh: Text200
    name_en: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    summary_zh: LongText
    summary_en: LongText | None = None
    provider_code: str
    base_library: BaseLibrary | None = None
    topic: str | None = Field(None, description="Topic code, 01-21 (GET /catalogue/topics).")
    format: str = Field("table", description="One of: " + ", ".join(FORMATS))
    sharing_type: SharingType
    sharing_conditions: LongText | None = None
    legal_basis: LongText | None = None
    sharing_modes: list[SharingMode] = Field(default_factory=lambda: [SharingMode.QUERY])
    open_type: OpenType = OpenType.NOT_OPEN
    open_conditions: LongText | None = None
    update_cycle: UpdateCycle = UpdateCycle.IRREGULAR
    steward_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    steward_contact: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: list[Annotated[str, StringConstraints(max_length=50)]] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list, description="Codes of related resources.")
    items: list[ItemIn] = Field(min_length=1)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and value not in TOPICS:
            raise ValueError(f"unknown topic {value!r}; topics are 01-{len(TOPICS):02d}")
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        return value


class ResourceUpdate(BaseModel):
    """Fields to change on an entry; items, when given, replace the whole list."""

    model_config = ConfigDict(extra="forbid")

    name_zh: Text200 | None = None
    name_en: str | None = None
    summary_zh: LongText | None = None
    summary_en: LongText | None = None
    base_library: BaseLibrary | None = None
    topic: str | None = None
    format: str | None = None
    sharing_type: SharingType | None = None
    sharing_conditions: LongText | None = None
    legal_basis: LongText | None = None
    sharing_modes: list[SharingMode] | None = None
    open_type: OpenType | None = None
    open_conditions: LongText | None = None
    update_cycle: UpdateCycle | None = None
    steward_name: str | None = None
    steward_contact: str | None = None
    tags: list[str] | None = None
    related: list[str] | None = None
    items: list[ItemIn] | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        return ResourceIn._topic(value)


class ItemOut(BaseModel):
    name: str
    name_zh: str
    name_en: str | None
    type: str
    is_key: bool
    nullable: bool
    sensitivity: Sensitivity
    personal: bool
    kind: ItemKind
    description: str | None


class ResourceOut(BaseModel):
    code: str
    classification_code: str
    name_zh: str
    name_en: str | None
    summary_zh: str
    summary_en: str | None
    provider_code: str
    provider_name: str
    base_library: BaseLibrary | None
    topic: str | None
    format: str
    sharing_type: SharingType
    sharing_conditions: str | None
    legal_basis: str | None
    sharing_modes: list[SharingMode]
    open_type: OpenType
    open_conditions: str | None
    update_cycle: UpdateCycle
    published_on: dt.date | None
    status: ResourceStatus
    steward_name: str | None
    steward_contact: str | None
    tags: list[str]
    related: list[str]
    current_version: int | None
    row_count: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    items: list[ItemOut]


class ResourceBrief(BaseModel):
    """One search hit: enough for a result list."""

    code: str
    name_zh: str
    name_en: str | None
    summary_zh: str
    provider_code: str
    provider_name: str
    base_library: BaseLibrary | None
    topic: str | None
    sharing_type: SharingType
    open_type: OpenType
    status: ResourceStatus
    row_count: int | None
    updated_at: dt.datetime


class FacetCount(BaseModel):
    value: str
    count: int


class SearchResult(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ResourceBrief]
    facets: dict[str, list[FacetCount]]


class LoadOut(BaseModel):
    id: int
    resource_code: str
    version: int | None
    status: LoadStatus
    source: dict[str, Any]
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    has_rejects: bool
    checksum: str | None
    error: str | None
    actor: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


class VersionOut(BaseModel):
    version: int
    row_count: int
    checksum: str
    created_at: dt.datetime
    created_by: str | None
    source: dict[str, Any]
    current: bool


class CompareOut(BaseModel):
    resource_code: str
    from_version: int
    to_version: int
    added: int
    removed: int
    changed: int
    unchanged: int
    key: list[str]


class ChangeOut(BaseModel):
    action: str
    actor: str
    at: dt.datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def item_out(item: DataItem) -> ItemOut:
    return ItemOut(
        name=item.name,
        name_zh=item.name_zh,
        name_en=item.name_en,
        type=item.type,
        is_key=item.is_key,
        nullable=item.nullable,
        sensitivity=item.sensitivity,
        personal=item.personal,
        kind=item.kind,
        description=item.description,
    )


def resource_out(
    resource: Resource, *, provider: tuple[str, str], related: list[str]
) -> ResourceOut:
    return ResourceOut(
        code=resource.code,
        classification_code=resource.classification_code,
        name_zh=resource.name_zh,
        name_en=resource.name_en,
        summary_zh=resource.summary_zh,
        summary_en=resource.summary_en,
        provider_code=provider[0],
        provider_name=provider[1],
        base_library=resource.base_library,
        topic=resource.topic,
        format=resource.format,
        sharing_type=resource.sharing_type,
        sharing_conditions=resource.sharing_conditions,
        legal_basis=resource.legal_basis,
        sharing_modes=[SharingMode(m) for m in resource.sharing_modes],
        open_type=resource.open_type,
        open_conditions=resource.open_conditions,
        update_cycle=resource.update_cycle,
        published_on=resource.published_on,
        status=resource.status,
        steward_name=resource.steward_name,
        steward_contact=resource.steward_contact,
        tags=list(resource.tags),
        related=related,
        current_version=resource.current_version,
        row_count=resource.row_count,
        created_at=resource.created_at,
        updated_at=resource.updated_at,
        items=[item_out(i) for i in resource.items],
    )


def brief(resource: Resource, *, provider: tuple[str, str]) -> ResourceBrief:
    return ResourceBrief(
        code=resource.code,
        name_zh=resource.name_zh,
        name_en=resource.name_en,
        summary_zh=resource.summary_zh,
        provider_code=provider[0],
        provider_name=provider[1],
        base_library=resource.base_library,
        topic=resource.topic,
        sharing_type=resource.sharing_type,
        open_type=resource.open_type,
        status=resource.status,
        row_count=resource.row_count,
        updated_at=resource.updated_at,
    )


def load_out(load: Load, resource_code: str) -> LoadOut:
    return LoadOut(
        id=load.id,
        resource_code=resource_code,
        version=load.version,
        status=load.status,
        source=load.source,
        rows_read=load.rows_read,
        rows_accepted=load.rows_accepted,
        rows_rejected=load.rows_rejected,
        has_rejects=bool(load.rejects_path),
        checksum=load.checksum,
        error=load.error,
        actor=load.actor,
        started_at=load.started_at,
        finished_at=load.finished_at,
    )


def change_out(change: ResourceChange) -> ChangeOut:
    return ChangeOut(
        action=change.action,
        actor=change.actor,
        at=change.at,
        before=change.before,
        after=change.after,
    )

"""What the portal takes in and gives out (Haihe's own REST; CKAN's shapes are in ``ckan``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from haihe.catalogue.models import OpenType, UpdateCycle
from haihe.portal.models import ApiKey, Application, ApplicationStatus, Dataset

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,99}$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null", "not_null"]
MeasureFn = Literal["count", "sum", "avg", "min", "max"]


class Condition(BaseModel):
    """One row condition of a view: ``item op value`` (``in`` takes a list)."""

    model_config = ConfigDict(extra="forbid")

    item: str
    op: FilterOp = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError(f"{self.item}: 'in' needs a list of values")
        if self.op not in ("is_null", "not_null", "in") and (
            self.value is None or isinstance(self.value, list | dict)
        ):
            raise ValueError(f"{self.item}: '{self.op}' needs one value")
        return self


class Measure(BaseModel):
    """One figure of an aggregated view: ``count`` of rows or ``fn`` of an item."""

    model_config = ConfigDict(extra="forbid")

    name: str
    fn: MeasureFn = "count"
    item: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Measure:
        if not IDENT.match(self.name):
            raise ValueError(f"measure name {self.name!r}: letters, digits and _ only")
        if self.fn != "count" and not self.item:
            raise ValueError(f"measure {self.name}: '{self.fn}' needs an item")
        return self


class Aggregate(BaseModel):
    """Group by some items and count or sum — 汇总."""

    model_config = ConfigDict(extra="forbid")

    group_by: list[str] = Field(min_length=1)
    measures: list[Measure] = Field(min_length=1)


class ViewSpec(BaseModel):
    """What of a catalogue resource a dataset opens — 开放视图.

    ``items`` (all when empty), rows meeting every ``where`` condition, optionally aggregated,
    and the items in ``masked`` de-identified (脱敏) as their kind.
    """

    model_config = ConfigDict(extra="forbid")

    items: list[str] = Field(default_factory=list)
    where: list[Condition] = Field(default_factory=list)
    aggregate: Aggregate | None = None
    masked: list[str] = Field(default_factory=list)
    indexed: list[str] = Field(default_factory=list, max_length=4)


class DatasetIn(BaseModel):
    """A dataset to publish: which resource, the view, and how it is described."""

    model_config = ConfigDict(extra="forbid")

    resource_code: str
    name: str | None = None
    title_zh: str = Field(min_length=1, max_length=200)
    title_en: str | None = Field(default=None, max_length=300)
    notes_zh: str = ""
    notes_en: str | None = None
    topic: str
    open_type: OpenType | None = None
    licence_id: str = "cc-by-4.0"
    update_frequency: UpdateCycle | None = None
    tags: list[str] = Field(default_factory=list, max_length=30)
    terms: str | None = None
    view: ViewSpec = Field(default_factory=ViewSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError("2-100 characters: lowercase letters, digits, - and _")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = sorted({t.strip() for t in value if t.strip()})
        long = [t for t in tags if len(t) > 100]
        if long:
            raise ValueError(f"tag {long[0][:20]!r}… is longer than 100 characters")
        return tags


class DatasetUpdate(BaseModel):
    """Fields of a dataset's description a provider may change without republishing."""

    model_config = ConfigDict(extra="forbid")

    title_zh: str | None = Field(default=None, min_length=1, max_length=200)
    title_en: str | None = None
    notes_zh: str | None = None
    notes_en: str | None = None
    topic: str | None = None
    licence_id: str | None = None
    update_frequency: UpdateCycle | None = None
    tags: list[str] | None = None
    terms: str | None = None


class DatasetOut(BaseModel):
    id: str
    name: str
    title_zh: str
    title_en: str | None
    resource_code: str
    provider_code: str
    topic: str
    open_type: OpenType
    licence_id: str
    update_frequency: UpdateCycle
    state: str
    view: dict[str, Any]
    tags: list[str]
    row_count: int | None
    source_version: int | None
    data_version: int | None
    formats: list[str]
    created_at: dt.datetime
    modified_at: dt.datetime


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    purpose: str = Field(min_length=2, max_length=2000)
    accept_terms: bool


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class ApplicationOut(BaseModel):
    id: int
    dataset: str
    applicant: str
    purpose: str
    status: ApplicationStatus
    submitted_at: dt.datetime
    due_on: dt.date
    overdue: bool
    decided_at: dt.datetime | None
    decided_by: str | None
    reason: str | None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_on: dt.date | None
    revoked: bool


class ApiKeyWithSecret(ApiKeyOut):
    key: str = Field(description="Shown once; send it as the Authorization header.")


class UsageRow(BaseModel):
    key: str
    title: str
    views: int
    downloads: int
    api_calls: int


class UsageOut(BaseModel):
    start: dt.date
    end: dt.date
    by: Literal["dataset", "topic", "day"]
    rows: list[UsageRow]


def dataset_out(ds: Dataset, *, resource_code: str, provider_code: str) -> DatasetOut:
    return DatasetOut(
        id=ds.uuid,
        name=ds.name,
        title_zh=ds.title_zh,
        title_en=ds.title_en,
        resource_code=resource_code,
        provider_code=provider_code,
        topic=ds.topic,
        open_type=ds.open_type,
        licence_id=ds.licence_id,
        update_frequency=ds.update_frequency,
        state=ds.state.value,
        view=ds.view,
        tags=[t.tag for t in ds.tags],
        row_count=ds.row_count,
        source_version=ds.source_version,
        data_version=ds.data_version,
        formats=[f for f in ds.formats.split(",") if f],
        created_at=ds.created_at,
        modified_at=ds.modified_at,
    )


def application_out(
    app: Application, *, dataset: str, applicant: str, today: dt.date
) -> ApplicationOut:
    return ApplicationOut(
        id=app.id,
        dataset=dataset,
        applicant=applicant,
        purpose=app.purpose,
        status=app.status,
        submitted_at=app.submitted_at,
        due_on=app.due_on,
        overdue=app.status is ApplicationStatus.PENDING and today > app.due_on,
        decided_at=app.decided_at,
        decided_by=app.decided_by,
        reason=app.reason,
    )


def api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_on=key.last_used_on,
        revoked=key.revoked_at is not None,
    )

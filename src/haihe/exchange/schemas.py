"""What the exchange takes in and gives out: requests, decisions, grants, calendar days."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource, SharingMode
from haihe.core.calendar import DayKind
from haihe.exchange import repository
from haihe.exchange.models import (
    AccessRequest,
    Grant,
    GrantBasis,
    GrantStatus,
    RequestStatus,
)
from haihe.orgs.models import InformationSystem, Organisation

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
MAX_DAYS = 3 * 366  # a grant lasts at most three years; renew it for longer


class RequestIn(BaseModel):
    """An access request — 共享申请 — as the consumer writes it."""

    model_config = ConfigDict(extra="forbid")

    resource_code: Code = Field(description="Catalogue code of the published entry wanted.")
    consumer_org_code: Code | None = Field(
        None, description="The requesting organisation (platform admin only; default: yours)."
    )
    system_code: Code | None = Field(
        None, description="One of the consumer's information systems, to limit the grant to it."
    )
    items: list[str] = Field(description="Data items wanted (at least one).")
    purpose: Purpose = Field(description="What the data is for — 用途.")
    scenario: Reason | None = Field(None, description="The business scenario — 应用场景.")
    legal_basis: Reason | None = Field(None, description="The law or rule relied on — 依据.")
    modes: list[SharingMode] = Field(description="How the data will be used (query, verify, …).")
    scope: list[dict[str, Any]] = Field(
        default_factory=list, description="Row conditions every delivered row must meet."
    )
    duration_days: int = Field(365, ge=1, le=MAX_DAYS, description="How long the grant lasts.")


class ApproveIn(BaseModel):
    """The provider's approval — 同意: everything left out keeps what was requested."""

    model_config = ConfigDict(extra="forbid")

    items: list[str] | None = Field(None, description="Narrow the items to these.")
    modes: list[SharingMode] | None = Field(None, description="Narrow the modes to these.")
    scope: list[dict[str, Any]] = Field(
        default_factory=list, description="Conditions added to the requested row scope."
    )
    duration_days: int | None = Field(None, ge=1, le=MAX_DAYS, description="Shorten the grant.")
    calls_per_day: int | None = Field(None, ge=1, description="Quota of calls per day.")
    rows_per_day: int | None = Field(None, ge=1, description="Quota of rows per day.")
    unmasked_items: list[str] = Field(
        default_factory=list, description="Granted items delivered unmasked (default: masked)."
    )
    note: Reason | None = None


class RefuseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why — required, the consumer sees it.")


class LegalBasisIn(BaseModel):
    """The platform admin's decision on a 不予共享 request: the legal basis that allows it."""

    model_config = ConfigDict(extra="forbid")

    legal_basis: Reason = Field(description="The law or decision that allows this use.")
    duration_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    unmasked_items: list[str] = Field(default_factory=list)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why — required.")


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_days: int | None = Field(
        None, ge=1, le=MAX_DAYS, description="Length of the renewal (default: as before)."
    )
    purpose: Purpose | None = Field(None, description="Default: the grant's purpose.")


class RequestOut(BaseModel):
    id: int
    resource_code: str
    resource_name: str
    provider_code: str
    consumer_org_code: str
    consumer_system_code: str | None
    requested_by: str
    items: list[str]
    purpose: str
    scenario: str | None
    legal_basis: str | None
    modes: list[str]
    scope: list[dict[str, Any]]
    duration_days: int
    status: RequestStatus
    submitted_at: dt.datetime
    due_on: dt.date | None
    days_left: int | None = Field(
        None, description="Working days left before due_on (below 0: overdue); pending only."
    )
    overdue: bool = False
    escalated_at: dt.datetime | None
    decided_at: dt.datetime | None
    decided_by: str | None
    decision_note: str | None
    renews_grant_id: int | None
    grant_id: int | None


class GrantOut(BaseModel):
    id: int
    request_id: int | None
    resource_code: str
    resource_name: str
    provider_code: str
    consumer_org_code: str
    consumer_system_code: str | None
    items: list[str]
    unmasked_items: list[str]
    scope: list[dict[str, Any]]
    modes: list[str]
    purpose: str
    calls_per_day: int | None
    rows_per_day: int | None
    basis: GrantBasis
    legal_basis: str | None
    status: GrantStatus
    starts_at: dt.datetime
    expires_at: dt.datetime
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class CalendarDayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DayKind
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CalendarDayOut(BaseModel):
    day: dt.date
    kind: DayKind
    name: str


def request_fields(req: AccessRequest) -> dict[str, Any]:
    """The request's own columns, for ``RequestOut`` (names and codes are added by the service)."""
    return {
        name: getattr(req, name)
        for name in (
            "id",
            "requested_by",
            "items",
            "purpose",
            "scenario",
            "legal_basis",
            "modes",
            "scope",
            "duration_days",
            "status",
            "submitted_at",
            "due_on",
            "escalated_at",
            "decided_at",
            "decided_by",
            "decision_note",
            "renews_grant_id",
        )
    }


def grant_fields(grant: Grant) -> dict[str, Any]:
    """The grant's own columns, for ``GrantOut``."""
    return {
        name: getattr(grant, name)
        for name in (
            "id",
            "request_id",
            "items",
            "unmasked_items",
            "scope",
            "modes",
            "purpose",
            "calls_per_day",
            "rows_per_day",
            "basis",
            "legal_basis",
            "status",
            "starts_at",
            "expires_at",
            "created_at",
            "created_by",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        )
    }


class Describer:
    """Turns requests and grants into their API views, looking each name up once per use."""

    def __init__(self, session: Session, *, today: dt.date | None = None) -> None:
        self.session = session
        self.today = today
        self._orgs: dict[int, str] = {}
        self._systems: dict[int, str] = {}
        self._resources: dict[int, tuple[str, str, int]] = {}

    def org_code(self, org_id: int) -> str:
        if org_id not in self._orgs:
            org = self.session.get(Organisation, org_id)
            self._orgs[org_id] = org.code if org else str(org_id)
        return self._orgs[org_id]

    def system_code(self, system_id: int | None) -> str | None:
        if system_id is None:
            return None
        if system_id not in self._systems:
            system = self.session.get(InformationSystem, system_id)
            self._systems[system_id] = system.code if system else str(system_id)
        return self._systems[system_id]

    def resource(self, resource_id: int) -> tuple[str, str, int]:
        """(code, Chinese name, provider id) of a resource."""
        if resource_id not in self._resources:
            r = self.session.get(Resource, resource_id)
            assert r is not None  # a foreign key guarantees it
            self._resources[resource_id] = (r.code, r.name_zh, r.provider_id)
        return self._resources[resource_id]

    def request(self, req: AccessRequest, *, days_left: int | None = None) -> RequestOut:
        code, name, provider_id = self.resource(req.resource_id)
        grant = repository.grant_of_request(self.session, req.id)
        pending = req.status is RequestStatus.PENDING
        return RequestOut(
            **request_fields(req),
            resource_code=code,
            resource_name=name,
            provider_code=self.org_code(provider_id),
            consumer_org_code=self.org_code(req.consumer_org_id),
            consumer_system_code=self.system_code(req.consumer_system_id),
            days_left=days_left if pending else None,
            overdue=bool(pending and self.today and req.due_on and req.due_on < self.today),
            grant_id=grant.id if grant else None,
        )

    def grant(self, grant: Grant) -> GrantOut:
        code, name, provider_id = self.resource(grant.resource_id)
        return GrantOut(
            **grant_fields(grant),
            resource_code=code,
            resource_name=name,
            provider_code=self.org_code(provider_id),
            consumer_org_code=self.org_code(grant.consumer_org_id),
            consumer_system_code=self.system_code(grant.consumer_system_id),
        )

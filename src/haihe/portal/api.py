"""REST routes of the portal for publishers, applicants and the bureau: /api/v1/portal."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.orgs.schemas import Page
from haihe.portal import service
from haihe.portal.materialise import today_in_city
from haihe.portal.models import Application, ApplicationStatus, Dataset, DatasetState
from haihe.portal.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    ApiKeyWithSecret,
    ApplicationIn,
    ApplicationOut,
    DatasetIn,
    DatasetOut,
    DatasetUpdate,
    DecisionIn,
    UsageOut,
    api_key_out,
    application_out,
    dataset_out,
)

router = APIRouter(prefix="/api/v1/portal", tags=["portal"])
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")]
Offset = Annotated[int, Query(ge=0, description="Items to skip.")]


def _out(session: Session, ds: Dataset) -> DatasetOut:
    resource = service.resource_of(session, ds)
    return dataset_out(
        ds, resource_code=resource.code, provider_code=service.provider_of(session, ds).code
    )


def _app_out(session: Session, app: Application) -> ApplicationOut:
    ds = session.get(Dataset, app.dataset_id)
    user = service.repo.user_by_id(session, app.user_id)
    return application_out(
        app,
        dataset=ds.name if ds else "",
        applicant=user.username if user else "",
        today=today_in_city(utcnow()),
    )


# ---------------------------------------------------------------- datasets


@router.post("/datasets", status_code=201)
def publish(
    session: DbSession, settings: AppSettings, principal: CurrentPrincipal, body: DatasetIn
) -> DatasetOut:
    """Publish a catalogue resource, or a view of it, as an open dataset (data written now)."""
    return _out(session, service.publish(session, actor=principal, settings=settings, data=body))


@router.get("/datasets")
def list_datasets(
    session: DbSession, principal: CurrentPrincipal, limit: Limit = 100, offset: Offset = 0
) -> Page[DatasetOut]:
    """Datasets the caller administers (withdrawn ones too)."""
    rows, total = service.list_own(session, actor=principal, limit=limit, offset=offset)
    return Page(items=[_out(session, d) for d in rows], total=total, limit=limit, offset=offset)


@router.get("/datasets/{ref}")
def get_dataset(session: DbSession, principal: CurrentPrincipal, ref: str) -> DatasetOut:
    return _out(session, service.get_own_dataset(session, actor=principal, ref=ref))


@router.patch("/datasets/{ref}")
def update_dataset(
    session: DbSession, principal: CurrentPrincipal, ref: str, body: DatasetUpdate
) -> DatasetOut:
    ds = service.update_dataset(session, actor=principal, ref=ref, data=body)
    return _out(session, ds)


@router.post("/datasets/{ref}/refresh")
def refresh(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    ref: str,
    force: bool = False,
) -> DatasetOut:
    """Rewrite the dataset's data from its resource's current version (if newer, or ``force``)."""
    service.refresh(session, actor=principal, settings=settings, ref=ref, force=force)
    return _out(session, service.get_own_dataset(session, actor=principal, ref=ref))


@router.post("/datasets/{ref}/withdraw")
def withdraw(session: DbSession, principal: CurrentPrincipal, ref: str) -> DatasetOut:
    ds = service.set_state(session, actor=principal, ref=ref, state=DatasetState.WITHDRAWN)
    return _out(session, ds)


@router.post("/datasets/{ref}/restore")
def restore(session: DbSession, principal: CurrentPrincipal, ref: str) -> DatasetOut:
    ds = service.set_state(session, actor=principal, ref=ref, state=DatasetState.ACTIVE)
    return _out(session, ds)


# ---------------------------------------------------------------- applications


@router.post("/applications", status_code=201)
def apply(session: DbSession, principal: CurrentPrincipal, body: ApplicationIn) -> ApplicationOut:
    """Apply for a 有条件开放 dataset, accepting its terms (decided within 2 working days)."""
    return _app_out(session, service.apply(session, actor=principal, data=body))


@router.get("/applications")
def list_applications(
    session: DbSession,
    principal: CurrentPrincipal,
    inbox: bool = Query(False, description="Applications for the caller's datasets."),
    status: ApplicationStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ApplicationOut]:
    rows, total = service.list_applications(
        session, actor=principal, inbox=inbox, status=status, limit=limit, offset=offset
    )
    today = today_in_city(utcnow())
    items = [application_out(a, dataset=d.name, applicant=u, today=today) for a, d, u in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/applications/{app_id}")
def get_application(session: DbSession, principal: CurrentPrincipal, app_id: int) -> ApplicationOut:
    return _app_out(session, service.get_application(session, actor=principal, app_id=app_id))


def _decide(
    session: Session, principal: Principal, app_id: int, approve: bool, body: DecisionIn
) -> ApplicationOut:
    app = service.decide(
        session, actor=principal, app_id=app_id, approve=approve, reason=body.reason
    )
    return _app_out(session, app)


@router.post("/applications/{app_id}/approve")
def approve(
    session: DbSession, principal: CurrentPrincipal, app_id: int, body: DecisionIn
) -> ApplicationOut:
    return _decide(session, principal, app_id, True, body)


@router.post("/applications/{app_id}/refuse")
def refuse(
    session: DbSession, principal: CurrentPrincipal, app_id: int, body: DecisionIn
) -> ApplicationOut:
    return _decide(session, principal, app_id, False, body)


@router.post("/applications/{app_id}/withdraw")
def withdraw_application(
    session: DbSession, principal: CurrentPrincipal, app_id: int
) -> ApplicationOut:
    app = service.withdraw_application(session, actor=principal, app_id=app_id)
    return _app_out(session, app)


# ---------------------------------------------------------------- API keys


@router.post("/keys", status_code=201)
def create_key(session: DbSession, principal: CurrentPrincipal, body: ApiKeyIn) -> ApiKeyWithSecret:
    """A new API key for the CKAN API (shown once)."""
    key, secret = service.create_api_key(session, actor=principal, data=body)
    return ApiKeyWithSecret(**api_key_out(key).model_dump(), key=secret)


@router.get("/keys")
def list_keys(session: DbSession, principal: CurrentPrincipal) -> list[ApiKeyOut]:
    return [api_key_out(k) for k in service.list_api_keys(session, actor=principal)]


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(session: DbSession, principal: CurrentPrincipal, key_id: int) -> Response:
    service.revoke_api_key(session, actor=principal, key_id=key_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- usage


@router.get("/usage")
def usage(
    session: DbSession,
    principal: CurrentPrincipal,
    by: str = Query("dataset", pattern="^(dataset|topic|day)$"),
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> UsageOut:
    """Views, downloads and API calls by dataset, topic or day (default: the last 30 days)."""
    last = end or today_in_city(utcnow())
    first = start or last - dt.timedelta(days=29)
    return service.usage(session, actor=principal, by=by, start=first, end=last)

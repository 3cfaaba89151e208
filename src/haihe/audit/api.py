"""REST routes of the audit ledger under /api/v1/audit."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import citizen, service, signing, statistics, verify
from haihe.audit import repository as repo
from haihe.audit.schemas import (
    CHINA_TIME,
    CSV_COLUMNS,
    ChainOut,
    EntryPage,
    MyUsesOut,
    ProblemOut,
    StatisticsOut,
    UsesOut,
    VerifyIn,
    VerifyOut,
    csv_row,
    entry_out,
    my_use_out,
)
from haihe.core.auth import Principal, Role
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession, require_roles

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditors = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.AUDITOR))]
BOM = "\ufeff"  # so that Excel reads the CSV as UTF-8 (Chinese stays readable)


def as_utc(when: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC instant; a time without a zone is read on the city's clock (UTC+8)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA_TIME)
    return when.astimezone(dt.UTC)


def ledger_filters(
    org: Annotated[str | None, Query(description="Acting organisation's code.")] = None,
    provider: Annotated[str | None, Query(description="Code of the org whose data.")] = None,
    resource: Annotated[str | None, Query(description="Catalogue entry code.")] = None,
    action: Annotated[
        str | None, Query(description="Action; ending in '.' matches a prefix (exchange.).")
    ] = None,
    mode: Annotated[str | None, Query(description="query, verify, bulk or subscribe.")] = None,
    outcome: Annotated[str | None, Query(description="ok, refused or error.")] = None,
    since: Annotated[
        dt.datetime | None, Query(alias="from", description="From this time (UTC+8 if no zone).")
    ] = None,
    until: Annotated[
        dt.datetime | None, Query(alias="to", description="Before this time (UTC+8 if no zone).")
    ] = None,
) -> repo.Filters:
    return repo.Filters(
        org=org,
        provider=provider,
        resource=resource,
        action=action,
        mode=mode,
        outcome=outcome,
        since=as_utc(since),
        until=as_utc(until),
    )


LedgerFilters = Annotated[repo.Filters, Depends(ledger_filters)]


@router.get("/entries")
def list_entries(
    session: DbSession,
    principal: CurrentPrincipal,
    filters: LedgerFilters,
    before: Annotated[int | None, Query(ge=1, description="Entries with a lower id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EntryPage:
    """Ledger entries, newest first, paged by id: all for platform admins and auditors, an
    org admin's organisation as actor or as provider."""
    visible = service.ledger_scope(principal)
    rows = repo.find_entries(
        session, filters=filters, visible=visible, before_id=before, limit=limit
    )
    return EntryPage(
        items=[entry_out(e) for e in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/entries.csv")
def export_entries(
    request: Request, principal: CurrentPrincipal, filters: LedgerFilters
) -> StreamingResponse:
    """The same entries as CSV (UTF-8 with BOM, oldest first), streamed."""
    visible = service.ledger_scope(principal)
    factory: sessionmaker[Session] = request.app.state.session_factory
    headers = {"Content-Disposition": 'attachment; filename="audit-entries.csv"'}
    return StreamingResponse(
        csv_chunks(factory, filters, visible), media_type="text/csv; charset=utf-8", headers=headers
    )


def csv_chunks(
    factory: sessionmaker[Session], filters: repo.Filters, visible: ColumnElement[bool] | None
) -> Iterator[str]:
    """CSV text in chunks of about a thousand rows, read on a session of its own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow(CSV_COLUMNS)
    with factory() as session:
        for n, entry in enumerate(
            repo.stream_entries(session, filters=filters, visible=visible), start=1
        ):
            writer.writerow(csv_row(entry))
            if n % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.post("/verify")
def verify_ledger(
    session: DbSession, settings: AppSettings, principal: Auditors, body: VerifyIn
) -> VerifyOut:
    """Verify the hash chains and signed checkpoints; ``intact`` false lists each problem."""
    if body.public_key:
        keys = [signing.public_key_from_pem(body.public_key.encode(), source="public_key")]
    else:
        local = signing.local_public_key(settings)
        keys = [] if local is None else [local]
    report = verify.verify_ledger(session, public_keys=keys, chain=body.chain, workers=1)
    return VerifyOut(
        intact=report.intact,
        entries=report.entries,
        seconds=round(report.seconds, 3),
        chains=[
            ChainOut(
                name=c.name,
                entries=c.entries,
                first_seq=c.first_seq,
                last_seq=c.last_seq,
                checkpoints=c.checkpoints,
                sealed=c.sealed,
                more_problems=c.more_problems,
            )
            for c in report.chains
        ],
        problems=[
            ProblemOut(chain=p.chain, seq=p.seq, check=p.check, message=p.message)
            for p in report.problems
        ],
    )


@router.get("/statistics")
def sharing_statistics(
    session: DbSession,
    principal: CurrentPrincipal,
    group_by: statistics.GroupBy = "day",
    since: Annotated[dt.date | None, Query(alias="from", description="First day.")] = None,
    until: Annotated[dt.date | None, Query(alias="to", description="Last day.")] = None,
) -> StatisticsOut:
    """Sharing uses (rows delivered plus subjects verified) by day (Asia/Shanghai),
    organisation, resource or provider."""
    rows = statistics.sharing_uses(
        session, actor=principal, group_by=group_by, since=since, until=until
    )
    return StatisticsOut(
        group_by=group_by,
        since=since,
        until=until,
        total=sum(r.uses for r in rows),
        rows=[UsesOut(key=r.key, uses=r.uses, entries=r.entries) for r in rows],
    )


@router.get("/me")
def my_data_uses(
    session: DbSession,
    settings: AppSettings,
    principal: CurrentPrincipal,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MyUsesOut:
    """Which organisations used records about me, when and for what purpose (residents)."""
    rows = citizen.uses_of_my_data(
        session, actor=principal, settings=settings, before_id=before, limit=limit
    )
    return MyUsesOut(
        linked=principal.subject is not None,
        items=[my_use_out(e) for e in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )

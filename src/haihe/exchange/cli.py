"""``haihe exchange …``: requests, approvals, grants and the working-day calendar.

Commands act as the platform admin (the machine's operator), or as a user with ``--as``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer
from sqlalchemy.orm import Session

from haihe.core import calendar
from haihe.core.auth import Principal, system_principal
from haihe.core.calendar import city_today
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of
from haihe.core.db import utcnow
from haihe.core.errors import InvalidInput, NotFound
from haihe.exchange import decisions, service
from haihe.exchange.schemas import ApproveIn, GrantOut, LegalBasisIn, RenewIn, RequestIn, RequestOut
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user

exchange_app = typer.Typer(
    help="Sharing and exchange: requests, approvals, grants.", no_args_is_help=True
)
calendar_app = typer.Typer(
    help="The working-day calendar (holidays and 调休).", no_args_is_help=True
)
exchange_app.add_typer(calendar_app, name="calendar")

AsOption = typer.Option(None, "--as", help="Act as this user (default: the platform admin).")


def _actor(session: Session, username: str | None) -> Principal:
    if username is None:
        return system_principal("cli")
    user = orgs_repo.user_by_username(session, username)
    principal = principal_of_user(user) if user else None
    if principal is None:
        raise NotFound(f"no active user {username!r}")
    return principal


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _scope(value: str | None) -> list[dict[str, Any]]:
    if not value:
        return []
    try:
        scope = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--scope is not JSON: {exc}") from None
    if not isinstance(scope, list):
        raise InvalidInput('--scope is a JSON list: [{"item": "age", "op": "ge", "value": 60}]')
    return scope


def _show_requests(rows: list[RequestOut], as_json: bool, title: str) -> None:
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    print_table(
        ["id", "resource", "consumer", "provider", "status", "due", "left", "grant"],
        [
            (
                r.id,
                r.resource_code,
                r.consumer_org_code,
                r.provider_code,
                r.status.value + (" (escalated)" if r.escalated_at else ""),
                r.due_on,
                r.days_left,
                r.grant_id,
            )
            for r in rows
        ],
        title=title,
    )


def _show_grants(rows: list[GrantOut], as_json: bool) -> None:
    if as_json:
        print_json([g.model_dump(mode="json") for g in rows])
        return
    print_table(
        ["id", "resource", "consumer", "provider", "items", "modes", "basis", "status", "expires"],
        [
            (
                g.id,
                g.resource_code,
                g.consumer_org_code,
                g.provider_code,
                ",".join(g.items),
                ",".join(g.modes),
                g.basis.value,
                g.status.value,
                g.expires_at.date(),
            )
            for g in rows
        ],
        title=f"{len(rows)} grants",
    )


@exchange_app.command("request")
def request(
    ctx: typer.Context,
    resource: str = typer.Argument(..., help="Catalogue code of the entry."),
    items: str = typer.Option(..., help="Data items, comma-separated."),
    purpose: str = typer.Option(..., help="What the data is for (用途)."),
    modes: str = typer.Option("query", help="query, verify, bulk, subscribe; comma-separated."),
    org: str | None = typer.Option(None, help="Consumer org code (default: the user's)."),
    system: str | None = typer.Option(None, help="The consumer's information system code."),
    scenario: str | None = typer.Option(None, help="Business scenario (应用场景)."),
    legal_basis: str | None = typer.Option(None, help="Law or rule relied on."),
    scope: str | None = typer.Option(None, help="Row scope as a JSON list of conditions."),
    days: int = typer.Option(365, min=1, help="How long the grant should last."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Request an entry; prints the request (granted at once for 无条件共享)."""
    data = RequestIn.model_validate(
        {
            "resource_code": resource,
            "consumer_org_code": org,
            "system_code": system,
            "items": _split(items) or [],
            "purpose": purpose,
            "scenario": scenario,
            "legal_basis": legal_basis,
            "modes": _split(modes) or [],
            "scope": _scope(scope),
            "duration_days": days,
        }
    )
    with session_for(settings_of(ctx)) as session:
        req = service.submit_request(session, actor=_actor(session, as_user), data=data)
        out = service.describe_requests(session, [req])
    _show_requests(out, as_json, f"request {out[0].id}: {out[0].status.value}")


@exchange_app.command("requests")
def requests(
    ctx: typer.Context,
    inbox: bool = typer.Option(False, "--inbox", help="Pending requests awaiting a decision."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """List requests (all, or the user's organisation's), or an approval inbox."""
    with session_for(settings_of(ctx)) as session:
        found = service.list_requests(session, actor=_actor(session, as_user), inbox=inbox)
        out = service.describe_requests(session, found)
    _show_requests(out, as_json, f"{len(out)} requests")


@exchange_app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: int = typer.Argument(...),
    items: str | None = typer.Option(None, help="Narrow to these items."),
    modes: str | None = typer.Option(None, help="Narrow to these modes."),
    scope: str | None = typer.Option(None, help="Conditions added to the row scope (JSON)."),
    days: int | None = typer.Option(None, min=1, help="Shorten the grant."),
    calls_per_day: int | None = typer.Option(None, min=1),
    rows_per_day: int | None = typer.Option(None, min=1),
    unmasked: str | None = typer.Option(None, help="Items delivered unmasked."),
    note: str | None = typer.Option(None),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Approve a pending request; prints the grant."""
    data = ApproveIn.model_validate(
        {
            "items": _split(items),
            "modes": _split(modes),
            "scope": _scope(scope),
            "duration_days": days,
            "calls_per_day": calls_per_day,
            "rows_per_day": rows_per_day,
            "unmasked_items": _split(unmasked) or [],
            "note": note,
        }
    )
    with session_for(settings_of(ctx)) as session:
        actor = _actor(session, as_user)
        grant = decisions.approve(session, actor=actor, request_id=request_id, data=data)
        out = service.describe_grants(session, [grant])
    _show_grants(out, as_json)


@exchange_app.command("refuse")
def refuse(
    ctx: typer.Context,
    request_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (the consumer sees it)."),
    as_user: str | None = AsOption,
) -> None:
    """Refuse a pending request with a reason."""
    with session_for(settings_of(ctx)) as session:
        actor = _actor(session, as_user)
        decisions.refuse(session, actor=actor, request_id=request_id, reason=reason)
    typer.echo(f"request {request_id} refused")


@exchange_app.command("withdraw")
def withdraw(
    ctx: typer.Context, request_id: int = typer.Argument(...), as_user: str | None = AsOption
) -> None:
    """Withdraw a pending request."""
    with session_for(settings_of(ctx)) as session:
        decisions.withdraw(session, actor=_actor(session, as_user), request_id=request_id)
    typer.echo(f"request {request_id} withdrawn")


@exchange_app.command("legal-basis")
def legal_basis(
    ctx: typer.Context,
    request_id: int = typer.Argument(...),
    basis: str = typer.Option(..., help="The law or decision that allows this use."),
    as_json: bool = JsonOption,
) -> None:
    """Allow a 不予共享 request on a recorded legal basis (the platform admin)."""
    with session_for(settings_of(ctx)) as session:
        grant = decisions.decide_legal_basis(
            session,
            actor=_actor(session, None),
            request_id=request_id,
            data=LegalBasisIn(legal_basis=basis),
        )
        out = service.describe_grants(session, [grant])
    _show_grants(out, as_json)


@exchange_app.command("grants")
def grants(
    ctx: typer.Context,
    side: str | None = typer.Option(None, "--side", help="consumer or provider (needs --as)."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """List grants."""
    sides: dict[str | None, Literal["consumer", "provider"] | None] = {
        None: None,
        "consumer": "consumer",
        "provider": "provider",
    }
    if side not in sides:
        raise InvalidInput("--side is consumer or provider")
    with session_for(settings_of(ctx)) as session:
        actor = _actor(session, as_user)
        found = service.list_grants(session, actor=actor, side=sides[side])
        out = service.describe_grants(session, found)
    _show_grants(out, as_json)


@exchange_app.command("revoke")
def revoke(
    ctx: typer.Context,
    grant_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (the consumer sees it)."),
    as_user: str | None = AsOption,
) -> None:
    """Revoke a grant in force."""
    with session_for(settings_of(ctx)) as session:
        decisions.revoke(session, actor=_actor(session, as_user), grant_id=grant_id, reason=reason)
    typer.echo(f"grant {grant_id} revoked")


@exchange_app.command("renew")
def renew(
    ctx: typer.Context,
    grant_id: int = typer.Argument(...),
    days: int | None = typer.Option(None, min=1, help="Length of the renewal."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Request the renewal of a grant."""
    with session_for(settings_of(ctx)) as session:
        actor = _actor(session, as_user)
        req = service.renew_grant(
            session, actor=actor, grant_id=grant_id, data=RenewIn(duration_days=days)
        )
        out = service.describe_requests(session, [req])
    _show_requests(out, as_json, f"renewal request {out[0].id}: {out[0].status.value}")


@exchange_app.command("expire")
def expire(ctx: typer.Context) -> None:
    """Mark grants past their expiry as expired (the scheduler does this too)."""
    with session_for(settings_of(ctx)) as session:
        ids = service.expire_grants(session, now=utcnow())
    typer.echo(f"{len(ids)} grants expired" + (f": {', '.join(map(str, ids))}" if ids else ""))


@exchange_app.command("escalate")
def escalate(ctx: typer.Context) -> None:
    """Escalate pending requests past their due day to the platform admin."""
    with session_for(settings_of(ctx)) as session:
        ids = service.escalate_overdue(session, today=city_today(utcnow()))
    typer.echo(f"{len(ids)} requests escalated" + (f": {', '.join(map(str, ids))}" if ids else ""))


@calendar_app.command("import")
def calendar_import(
    ctx: typer.Context, file: Path = typer.Argument(..., help="A .toml or .csv calendar file.")
) -> None:
    """Load holidays and 调休 working days (see docs/holidays-example.toml)."""
    entries = calendar.read_file(file)
    with session_for(settings_of(ctx)) as session:
        n = calendar.set_days(session, entries)
    holidays = sum(1 for e in entries if e.kind.value == "holiday")
    typer.echo(f"{n} days loaded: {holidays} holidays, {n - holidays} working days (调休)")


@calendar_app.command("list")
def calendar_list(
    ctx: typer.Context,
    year: int | None = typer.Option(None, "--year", help="Which year (default: this one)."),
    as_json: bool = JsonOption,
) -> None:
    """Holidays and 调休 working days of a year."""
    year = year or city_today(utcnow()).year
    with session_for(settings_of(ctx)) as session:
        days = [(d.day, d.kind.value, d.name) for d in calendar.list_year(session, year)]
    if as_json:
        print_json([{"day": d, "kind": k, "name": n} for d, k, n in days])
        return
    print_table(["day", "kind", "name"], days, title=f"{year}: {len(days)} exceptions")

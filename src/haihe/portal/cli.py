"""``haihe portal …``: publish and refresh open datasets, decide applications, read usage.

Commands act as the platform admin (the machine's operator), or as a user with ``--as``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from haihe.core.auth import Principal, system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of
from haihe.core.db import utcnow
from haihe.core.errors import InvalidInput, NotFound
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user
from haihe.portal import service
from haihe.portal.materialise import today_in_city
from haihe.portal.models import ApplicationStatus, Dataset, DatasetState
from haihe.portal.schemas import DatasetIn, application_out, dataset_out

portal_app = typer.Typer(
    help="The open-data portal: datasets, applications, usage.", no_args_is_help=True
)
AsOption = typer.Option(None, "--as", help="Act as this user (default: the platform admin).")


def _actor(session: Session, username: str | None) -> Principal:
    if username is None:
        return system_principal("cli")
    user = orgs_repo.user_by_username(session, username)
    principal = principal_of_user(user) if user else None
    if principal is None:
        raise NotFound(f"no active user {username!r}")
    return principal


def _show(session: Session, rows: list[Dataset], as_json: bool, title: str) -> None:
    described = [
        dataset_out(
            d,
            resource_code=service.resource_of(session, d).code,
            provider_code=service.provider_of(session, d).code,
        )
        for d in rows
    ]
    if as_json:
        print_json([d.model_dump(mode="json") for d in described])
        return
    uses = {d.uuid: (d.views_total, d.downloads_total, d.api_calls_total) for d in rows}
    print_table(
        ["name", "title", "resource", "provider", "topic", "open type", "rows", "state",
         "views/downloads/calls"],
        [
            (d.name, d.title_zh, d.resource_code, d.provider_code, d.topic, d.open_type.value,
             d.row_count, d.state, "/".join(str(n) for n in uses[d.id]))
            for d in described
        ],
        title=title,
    )  # fmt: skip


@portal_app.command("list")
def list_datasets(
    ctx: typer.Context,
    limit: int = typer.Option(1000, min=1, max=1000),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """List the datasets you administer (all of them for the platform admin), withdrawn too."""
    with session_for(settings_of(ctx)) as session:
        rows, total = service.list_own(
            session, actor=_actor(session, as_user), limit=limit, offset=0
        )
        _show(session, list(rows), as_json, f"{total} datasets")


@portal_app.command("publish")
def publish(
    ctx: typer.Context,
    resource: str = typer.Argument(..., help="Catalogue code of the entry to open."),
    title_zh: str = typer.Option(..., "--title-zh", help="Chinese title."),
    topic: str = typer.Option(..., help="Topic (CKAN group) name, e.g. economy, transport."),
    name: str | None = typer.Option(None, help="CKAN name (default: from the code)."),
    title_en: str | None = typer.Option(None, "--title-en"),
    notes: str = typer.Option("", help="Description (Chinese)."),
    open_type: str | None = typer.Option(None, help="unconditional or conditional."),
    licence: str = typer.Option("cc-by-4.0", help="Licence id."),
    tags: str = typer.Option("", help="Tags, comma-separated."),
    terms: str | None = typer.Option(None, help="Terms a 有条件开放 applicant accepts."),
    view: str | None = typer.Option(None, help="The view as JSON (items, where, aggregate…)."),
    view_file: Path | None = typer.Option(None, exists=True, dir_okay=False, help="…or a file."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Publish a catalogue entry, or a view of it, as an open dataset; its data is written now."""
    text = view_file.read_text(encoding="utf-8") if view_file else view
    try:
        spec = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the view is not JSON: {exc}") from None
    data = DatasetIn.model_validate(
        {
            "resource_code": resource,
            "name": name,
            "title_zh": title_zh,
            "title_en": title_en,
            "notes_zh": notes,
            "topic": topic,
            "open_type": open_type,
            "licence_id": licence,
            "tags": [t.strip() for t in tags.split(",") if t.strip()],
            "terms": terms,
            "view": spec,
        }
    )
    settings = settings_of(ctx)
    with session_for(settings) as session:
        ds = service.publish(session, actor=_actor(session, as_user), settings=settings, data=data)
        _show(session, [ds], as_json, f"published {ds.name}: {ds.row_count:,} rows")


@portal_app.command("refresh")
def refresh(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One dataset (default: every stale one)."),
    force: bool = typer.Option(False, "--force", help="Rewrite even when current."),
    as_user: str | None = AsOption,
) -> None:
    """Rewrite datasets' data from their resources' current versions."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        actor = _actor(session, as_user)
        if name is None:
            done = service.refresh_stale(session, settings=settings, actor=actor)
            typer.echo(
                f"refreshed {len(done)} dataset(s)" + (f": {', '.join(done)}" if done else "")
            )
            return
        changed = service.refresh(session, actor=actor, settings=settings, ref=name, force=force)
        typer.echo(f"{name}: {'refreshed' if changed else 'already current'}")


@portal_app.command("withdraw")
def withdraw(
    ctx: typer.Context, name: str = typer.Argument(...), as_user: str | None = AsOption
) -> None:
    """Withdraw a dataset from the portal (its data stays; ``restore`` puts it back)."""
    with session_for(settings_of(ctx)) as session:
        service.set_state(
            session, actor=_actor(session, as_user), ref=name, state=DatasetState.WITHDRAWN
        )
    typer.echo(f"{name}: withdrawn")


@portal_app.command("restore")
def restore(
    ctx: typer.Context, name: str = typer.Argument(...), as_user: str | None = AsOption
) -> None:
    """Put a withdrawn dataset back on the portal."""
    with session_for(settings_of(ctx)) as session:
        service.set_state(
            session, actor=_actor(session, as_user), ref=name, state=DatasetState.ACTIVE
        )
    typer.echo(f"{name}: active")


@portal_app.command("applications")
def applications(
    ctx: typer.Context,
    status: ApplicationStatus | None = typer.Option(None, help="Only these (e.g. pending)."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Applications for 有条件开放 datasets awaiting or past a decision (your inbox)."""
    with session_for(settings_of(ctx)) as session:
        rows, total = service.list_applications(
            session, actor=_actor(session, as_user), inbox=True, status=status, limit=1000,
            offset=0,
        )  # fmt: skip
    today = today_in_city(utcnow())
    out = [application_out(a, dataset=d.name, applicant=u, today=today) for a, d, u in rows]
    if as_json:
        print_json([a.model_dump(mode="json") for a in out])
        return
    print_table(
        ["id", "dataset", "applicant", "purpose", "status", "due", "overdue", "reason"],
        [(a.id, a.dataset, a.applicant, a.purpose, a.status.value, a.due_on,
          "yes" if a.overdue else "", a.reason) for a in out],
        title=f"{total} applications",
    )  # fmt: skip


@portal_app.command("approve")
def approve(
    ctx: typer.Context,
    app_id: int = typer.Argument(..., help="Application id."),
    reason: str | None = typer.Option(None, help="A note for the applicant."),
    as_user: str | None = AsOption,
) -> None:
    """Approve a pending application: the applicant's API keys then read the dataset."""
    with session_for(settings_of(ctx)) as session:
        app = service.decide(
            session, actor=_actor(session, as_user), app_id=app_id, approve=True, reason=reason
        )
        typer.echo(f"application {app.id}: {app.status.value}")


@portal_app.command("refuse")
def refuse(
    ctx: typer.Context,
    app_id: int = typer.Argument(..., help="Application id."),
    reason: str = typer.Option(..., help="Why (the applicant sees it)."),
    as_user: str | None = AsOption,
) -> None:
    """Refuse a pending application, saying why."""
    with session_for(settings_of(ctx)) as session:
        app = service.decide(
            session, actor=_actor(session, as_user), app_id=app_id, approve=False, reason=reason
        )
        typer.echo(f"application {app.id}: {app.status.value}")


@portal_app.command("usage")
def usage(
    ctx: typer.Context,
    by: str = typer.Option("dataset", help="dataset, topic or day."),
    start: str | None = typer.Option(None, help="First day (default: 29 days before end)."),
    end: str | None = typer.Option(None, help="Last day (default: today in the city)."),
    as_user: str | None = AsOption,
    as_json: bool = JsonOption,
) -> None:
    """Views, downloads and API calls by dataset, topic or day."""
    try:
        last = dt.date.fromisoformat(end) if end else today_in_city(utcnow())
        first = dt.date.fromisoformat(start) if start else last - dt.timedelta(days=29)
    except ValueError as exc:
        raise InvalidInput(f"a day is written 2026-01-31: {exc}") from None
    with session_for(settings_of(ctx)) as session:
        out = service.usage(session, actor=_actor(session, as_user), by=by, start=first, end=last)
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    print_table(
        [by, "title", "views", "downloads", "API calls"],
        [(r.key, r.title, r.views, r.downloads, r.api_calls) for r in out.rows],
        title=f"usage {out.start} – {out.end}",
    )

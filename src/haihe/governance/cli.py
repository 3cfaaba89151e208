"""Commands `haihe governance …`: grids, categories, Open311 keys, deadlines, statistics.

The CLI is run by the installation's operator on the server, so it acts as the platform admin.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from haihe.core.auth import system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of
from haihe.core.db import utcnow
from haihe.core.errors import InvalidInput
from haihe.governance import categories, deadlines, grids, keys, service, snapshot, statistics
from haihe.governance.models import AreaLevel, EventSource
from haihe.governance.schemas import CategoryOut, Open311KeyIn

governance_app = typer.Typer(help="Grid governance (网格化治理): grids, events, Open311.")
grids_app = typer.Typer(help="The grid map: districts → streets → communities → cells.")
categories_app = typer.Typer(help="Event categories (事件类别), deadlines and handling units.")
keys_app = typer.Typer(help="Open311 api_keys for the 12345 hotline and other systems.")
governance_app.add_typer(grids_app, name="grids")
governance_app.add_typer(categories_app, name="categories")
governance_app.add_typer(keys_app, name="open311-keys")

ACTOR = system_principal("cli")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


@grids_app.command("import")
def grids_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A GeoJSON FeatureCollection of one level."),
    level: AreaLevel = typer.Option(..., help="district, street, community or cell."),
) -> None:
    """Import one level of the grid map (import districts, streets, communities, cells in order)."""
    with session_for(settings_of(ctx)) as session:
        out = grids.import_geojson(session, actor=ACTOR, data=_read(file), level=level)
    typer.echo(
        f"{out.level.value}: {out.created} created, {out.updated} updated, "
        f"{out.linked_to_orgs} linked to member organisations (grid revision {out.revision})"
    )


@grids_app.command("list")
def grids_list(
    ctx: typer.Context,
    level: AreaLevel | None = typer.Option(None, help="Only this level."),
    parent: str | None = typer.Option(None, help="Only children of this area code."),
    q: str | None = typer.Option(None, "--search", "-q", help="Part of a code or name."),
    limit: int = typer.Option(100, min=1, max=100_000, help="Rows to show."),
    as_json: bool = JsonOption,
) -> None:
    """List areas of the grid map."""
    with session_for(settings_of(ctx)) as session:
        rows, total = grids.list_areas(session, level=level, parent_code=parent, q=q, limit=limit)
        out = [
            {"code": a.code, "level": a.level.value, "name": a.name_zh, "org": a.org_id}
            for a in rows
        ]
    if as_json:
        print_json(out)
        return
    print_table(
        ["code", "level", "name", "org id"],
        [list(r.values()) for r in out],
        title=f"{len(out)} of {total} areas",
    )


@grids_app.command("assign")
def grids_assign(
    ctx: typer.Context,
    cell: str = typer.Argument(..., help="Cell code."),
    username: str = typer.Argument(..., help="A user with the grid_worker role."),
) -> None:
    """Assign a grid worker (网格员) to a cell."""
    with session_for(settings_of(ctx)) as session:
        grids.assign_worker(session, actor=ACTOR, cell_code=cell, username=username)
    typer.echo(f"{username} now patrols {cell}")


@grids_app.command("locate")
def grids_locate(
    ctx: typer.Context,
    lng: float = typer.Argument(..., help="Longitude (WGS 84)."),
    lat: float = typer.Argument(..., help="Latitude (WGS 84)."),
) -> None:
    """Print the cell a point lies in."""
    with session_for(settings_of(ctx)) as session:
        found = service.place(session, lng=lng, lat=lat)
    typer.echo(found.cell_code)


@categories_app.command("import")
def categories_import(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, help="A TOML file of categories (default: Haihe's built-in set)."
    ),
) -> None:
    """Create or update event categories from a TOML file (shape: the built-in set)."""
    text = _read(file).decode("utf-8") if file else None
    with session_for(settings_of(ctx)) as session:
        created, updated = categories.import_categories(session, actor=ACTOR, text=text)
    typer.echo(f"categories: {created} created, {updated} updated")


@categories_app.command("list")
def categories_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the event categories."""
    with session_for(settings_of(ctx)) as session:
        rows = [
            CategoryOut.model_validate(c)
            for c in categories.list_categories(session, active_only=False)
        ]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    print_table(
        ["code", "name", "name (en)", "level", "department", "deadline", "active"],
        [
            (
                r.code,
                r.name_zh,
                r.name_en,
                r.level.value,
                r.department_code,
                f"{r.deadline_working_days} working days"
                if r.deadline_working_days
                else f"{r.deadline_hours} h",
                r.active,
            )
            for r in rows
        ],
    )


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    client: str = typer.Option(..., "--client", help="The orgs API client's client_id."),
    name: str = typer.Option(..., help="What the key is for, e.g. 12345 热线."),
    source: EventSource = typer.Option(EventSource.HOTLINE_12345, help="Source it reports as."),
) -> None:
    """Issue an Open311 api_key (printed once; only its hash is kept)."""
    data = Open311KeyIn(client_id=client, name=name, source=source)
    with session_for(settings_of(ctx)) as session:
        row, secret = keys.create_key(session, actor=ACTOR, data=data)
        key_id = row.id
    typer.echo(f"key {key_id}: {secret}")


@governance_app.command("scan-deadlines")
def scan_deadlines(ctx: typer.Context) -> None:
    """Remind, flag overdue and supervise what is due now (the periodic job does this too)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        result = deadlines.scan_deadlines(session, settings=settings, now=utcnow())
    typer.echo(result)


@governance_app.command("stats")
def stats(
    ctx: typer.Context,
    first: dt.datetime | None = typer.Option(None, "--from", formats=["%Y-%m-%d"]),
    last: dt.datetime | None = typer.Option(None, "--to", formats=["%Y-%m-%d"]),
    area: str | None = typer.Option(None, help="A district or street code."),
) -> None:
    """Print the statistics of events reported in a period (default: the last 30 days)."""
    end = last.date() if last else service.china_day(utcnow())
    start = first.date() if first else end - dt.timedelta(days=29)
    settings = settings_of(ctx)
    with session_for(settings) as session:
        out = statistics.summary(
            session, actor=ACTOR, settings=settings, first=start, last=end, area_code=area
        )
    print_json(out)


@governance_app.command("snapshot")
def snapshot_refresh(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Write every event again as a new base."),
) -> None:
    """Bring the statistics snapshot up to date (the periodic job does this too)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        typer.echo(snapshot.refresh(session, settings=settings, now=utcnow(), full=full))

"""Commands `haihe catalogue …`: describe, load, version, find, export and import entries.

The CLI is run by the installation's operator on the server, so it acts as the platform admin.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from haihe.catalogue import loading, service, spreadsheet, versions
from haihe.catalogue import repository as repo
from haihe.catalogue.schemas import ResourceIn, ResourceUpdate, change_out, load_out
from haihe.catalogue.search import Filters, search
from haihe.core.auth import system_principal
from haihe.core.clikit import JsonOption, console, print_json, print_table, session_for, settings_of
from haihe.core.errors import InvalidInput

catalogue_app = typer.Typer(help="The resource catalogue (政务信息资源目录).")
ACTOR = system_principal("cli")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid UTF-8 JSON: {exc}") from None


@catalogue_app.command("search")
def search_command(
    ctx: typer.Context,
    q: str = typer.Argument("", help="Words in Chinese or English (all must match)."),
    provider: str | None = typer.Option(None, help="Provider org code."),
    base_library: str | None = typer.Option(None, help="population, legal_entity, …"),
    topic: str | None = typer.Option(None, help="Topic code 01-21."),
    sharing_type: str | None = typer.Option(None, help="unconditional, conditional, not_shared"),
    open_type: str | None = typer.Option(None, help="unconditional, conditional, not_open"),
    status: str | None = typer.Option(None, help="draft, published or retired"),
    limit: int = typer.Option(20, min=1, max=1000, help="Rows to show."),
    as_json: bool = JsonOption,
) -> None:
    """Find entries by keyword and filters."""
    filters = Filters(
        provider=provider,
        base_library=base_library,
        topic=topic,
        sharing_type=sharing_type,
        open_type=open_type,
        status=status,
    )
    with session_for(settings_of(ctx)) as session:
        hits = search(session, actor=ACTOR, q=q, filters=filters, limit=limit, offset=0)
        rows = [
            (r.code, r.name_zh, r.provider_code, r.sharing_type.value, r.status.value, r.row_count)
            for r in hits.items
        ]
    if as_json:
        print_json(
            [
                dict(zip(["code", "name", "provider", "sharing", "status", "rows"], r, strict=True))
                for r in rows
            ]
        )
        return
    print_table(
        ["code", "name", "provider", "sharing", "status", "rows"],
        rows,
        title=f"{len(rows)} of {hits.total} entries",
    )


@catalogue_app.command("show")
def show(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """Print an entry, with its data items, as JSON."""
    with session_for(settings_of(ctx)) as session:
        resource = service.get_resource(session, actor=ACTOR, code=code)
        print_json(service.describe(session, resource).model_dump(mode="json"))


@catalogue_app.command("add")
def add(
    ctx: typer.Context, file: Path = typer.Argument(..., help="JSON description of the entry.")
) -> None:
    """Describe a new entry from a JSON file (fields as in POST /api/v1/catalogue/resources)."""
    data = ResourceIn.model_validate(_read_json(file))
    with session_for(settings_of(ctx)) as session:
        resource = service.create_resource(session, actor=ACTOR, data=data)
        typer.echo(f"added {resource.code} {resource.name_zh} (draft)")


@catalogue_app.command("update")
def update(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Entry code."),
    file: Path = typer.Argument(..., help="JSON with the fields to change."),
) -> None:
    """Change an entry from a JSON file of fields."""
    data = ResourceUpdate.model_validate(_read_json(file))
    with session_for(settings_of(ctx)) as session:
        service.update_resource(session, actor=ACTOR, code=code, data=data)
        typer.echo(f"updated {code}")


@catalogue_app.command("publish")
def publish(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """Publish a draft entry."""
    with session_for(settings_of(ctx)) as session:
        service.publish(session, actor=ACTOR, code=code)
        typer.echo(f"published {code}")


@catalogue_app.command("retire")
def retire(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """Retire a published entry."""
    with session_for(settings_of(ctx)) as session:
        service.retire(session, actor=ACTOR, code=code)
        typer.echo(f"retired {code}")


@catalogue_app.command("history")
def history(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """Who changed an entry, when, and how."""
    with session_for(settings_of(ctx)) as session:
        changes = [change_out(c) for c in service.history(session, actor=ACTOR, code=code)]
    print_table(
        ["when", "who", "action", "changed"],
        [
            (c.at.isoformat(timespec="seconds"), c.actor, c.action, _changed(c.before, c.after))
            for c in changes
        ],
    )


def _changed(before: dict[str, object] | None, after: dict[str, object] | None) -> str:
    if before is None or after is None:
        return ""
    return ", ".join(sorted(k for k in after if before.get(k) != after.get(k)))


@catalogue_app.command("load")
def load(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Entry code."),
    file: Path | None = typer.Argument(None, help="CSV, Parquet or JSON Lines file."),
    format: str | None = typer.Option(None, "--format", help="csv, parquet or jsonl."),
    encoding: str | None = typer.Option(None, help="utf-8, gbk or gb18030 (CSV)."),
    sql_url: str | None = typer.Option(None, help="Read from this SQLAlchemy URL instead."),
    table: str | None = typer.Option(None, help="With --sql-url: a table to read."),
    query: str | None = typer.Option(None, help="With --sql-url: one SELECT query."),
) -> None:
    """Load data into an entry as its new current version."""
    if sql_url:
        source = loading.LoadSource(format="sql", url=sql_url, table=table, query=query)
    elif file is not None:
        source = loading.LoadSource.for_file(file, format=format, encoding=encoding)
    else:
        raise InvalidInput("give a FILE to load, or --sql-url with --table or --query")
    columns = (
        TextColumn("loading {task.description}"),
        BarColumn(),
        DownloadColumn()
        if file is not None and not sql_url
        else TextColumn("{task.completed:,} rows"),
        TransferSpeedColumn() if file is not None and not sql_url else TextColumn(""),
        TimeElapsedColumn(),
    )
    settings = settings_of(ctx)
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(code, total=None)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total or None)

        with session_for(settings) as session:
            result = load_out(
                loading.load_resource(
                    session,
                    actor=ACTOR,
                    settings=settings,
                    code=code,
                    source=source,
                    progress=report,
                ),
                code,
            )
    typer.echo(
        f"{code}: version {result.version}, read {result.rows_read:,}, "
        f"accepted {result.rows_accepted:,}, rejected {result.rows_rejected:,}"
    )
    if result.rows_rejected:
        typer.echo(
            f"rejected rows: haihe catalogue loads {code}  (the rejects file is listed there)"
        )


@catalogue_app.command("loads")
def loads(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """The loads of an entry, newest first, with their rejects files."""
    with session_for(settings_of(ctx)) as session:
        resource = service.get_resource(session, actor=ACTOR, code=code)
        rows = [
            (
                x.id,
                x.status.value,
                x.version,
                x.rows_read,
                x.rows_accepted,
                x.rows_rejected,
                x.rejects_path or "",
            )
            for x in repo.loads_of(session, resource.id, limit=50)
        ]
    print_table(["load", "status", "version", "read", "accepted", "rejected", "rejects file"], rows)


@catalogue_app.command("versions")
def list_versions(ctx: typer.Context, code: str = typer.Argument(..., help="Entry code.")) -> None:
    """The versions of an entry's data."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        out = versions.list_versions(session, actor=ACTOR, settings=settings, code=code)
    print_table(
        ["version", "rows", "created", "by", "current", "checksum"],
        [
            (
                v.version,
                f"{v.row_count:,}",
                v.created_at.isoformat(timespec="seconds"),
                v.created_by,
                "*" if v.current else "",
                v.checksum[:16],
            )
            for v in out
        ],
    )


@catalogue_app.command("compare")
def compare(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Entry code."),
    from_version: int = typer.Argument(..., help="Older version."),
    to_version: int = typer.Argument(..., help="Newer version."),
) -> None:
    """Rows added, removed and changed between two versions."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        out = versions.compare(
            session,
            actor=ACTOR,
            settings=settings,
            code=code,
            from_version=from_version,
            to_version=to_version,
        )
    print_json(out.model_dump(mode="json"))


@catalogue_app.command("export")
def export(
    ctx: typer.Context, file: Path = typer.Argument(..., help="Target .xlsx or .json file.")
) -> None:
    """Write the whole catalogue to a workbook or JSON file."""
    with session_for(settings_of(ctx)) as session:
        if file.suffix.lower() == ".xlsx":
            file.write_bytes(spreadsheet.export_xlsx(session, actor=ACTOR))
        elif file.suffix.lower() == ".json":
            data = spreadsheet.export_json(session, actor=ACTOR)
            file.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            raise InvalidInput("the export file must end in .xlsx or .json")
    typer.echo(f"wrote {file}")


@catalogue_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A catalogue workbook (.xlsx) or JSON file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only; change nothing."),
) -> None:
    """Create and update entries from a workbook or JSON file (all or nothing)."""
    if not file.exists():
        raise InvalidInput(f"{file} does not exist")
    with session_for(settings_of(ctx)) as session:
        if file.suffix.lower() == ".xlsx":
            report = spreadsheet.import_xlsx(
                session, actor=ACTOR, data=file.read_bytes(), dry_run=dry_run
            )
        elif file.suffix.lower() == ".json":
            report = spreadsheet.import_json(
                session, actor=ACTOR, data=file.read_bytes(), dry_run=dry_run
            )
        else:
            raise InvalidInput("the import file must end in .xlsx or .json")
    print_json(report.model_dump(mode="json"))

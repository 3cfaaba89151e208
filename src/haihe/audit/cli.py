"""``haihe audit …``: sign checkpoints, verify, query, export, count and purge the ledger."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import typer

from haihe.audit import repository as repo
from haihe.audit import retention, service, signing, statistics, subject_sets, verify
from haihe.audit.api import BOM, as_utc
from haihe.audit.schemas import CSV_COLUMNS, csv_row, entry_out
from haihe.core.auth import system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of

audit_app = typer.Typer(help="The audit ledger: verify, query, export.", no_args_is_help=True)
ACTOR = system_principal("cli")


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@audit_app.command("keys")
def keys(ctx: typer.Context) -> None:
    """Print the public key that checkpoints are signed with (creating the key pair once)."""
    settings = settings_of(ctx)
    public = signing.signing_key(settings).public_key()
    typer.echo(f"# key id {signing.key_id(public)} (private key: {signing.key_path(settings)})")
    typer.echo(signing.public_pem(public), nl=False)


@audit_app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Verify and seal, in signed blocks, the entries each chain gained since its last
    checkpoint (only its head is signed if they do not verify)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        made = service.checkpoint(session, settings=settings)
        for name in dict.fromkeys(p.chain for p in made):
            points = [p for p in made if p.chain == name]
            last = points[-1]
            if last.first_seq is None:
                typer.echo(
                    f"signed chain {name} at {last.seq} ({last.hash[:16]}…), its head only: "
                    "the entries since its last checkpoint do not verify (run 'haihe audit "
                    "verify')"
                )
                continue
            typer.echo(
                f"signed chain {name}: entries {points[0].first_seq:,}-{last.seq:,} sealed in "
                f"{len(points)} blocks ({last.hash[:16]}…)"
            )
    if not made:
        typer.echo("no chain moved since its last checkpoint")


@audit_app.command("verify")
def verify_command(
    ctx: typer.Context,
    chain: str | None = typer.Option(None, "--chain", help="Only this chain."),
    public_key: list[Path] | None = typer.Option(
        None,
        "--public-key",
        help="PEM file of a key checkpoints may be signed with; repeatable (default: this "
        "installation's key).",
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Processes to verify with (default: one per core for large chains)."
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also compare every entry's columns with the text its hash covers (up to twice as "
        "long), and every batch's subject set with its digest: after a 'guard' problem, and now "
        "and then.",
    ),
) -> None:
    """Verify hashes, links, chain heads and signed checkpoints; exit 1 if tampered.

    What is hashed is each entry's stored text, which the database itself keeps equal to the
    entry's columns (the guard: a generated column on SQLite, a CHECK constraint on
    PostgreSQL). Verify checks that the guard is in place; --deep checks the columns too.
    """
    settings = settings_of(ctx)
    if public_key:
        keys = [signing.load_public_key(p) for p in public_key]
    else:
        local = signing.local_public_key(settings)
        keys = [] if local is None else [local]
    with session_for(settings) as session:
        report = verify.verify_ledger(
            session, public_keys=keys, chain=chain, workers=workers, deep=deep
        )
        sets = subject_sets.verify_sets(session, settings) if deep else []
    for line in [*verify.lines(report), *sets]:
        typer.echo(line)
    rate = report.entries / report.seconds if report.seconds else 0.0
    sealed = sum(c.sealed for c in report.chains)
    summary = (
        f"{report.entries:,} entries in {len(report.chains)} chains "
        f"({sealed:,} by their blocks' signed digests), "
        f"{sum(c.checkpoints for c in report.chains)} checkpoints, "
        f"{report.seconds:.2f} s ({rate:,.0f} entries/s)"
        + (", columns compared" if report.deep else "")
    )
    if report.intact and not sets:
        typer.echo(f"intact: {summary}")
        return
    typer.echo(f"TAMPERED: {len(report.problems) + len(sets)} problems; {summary}", err=True)
    raise typer.Exit(1)


def _filters(
    org: str | None,
    provider: str | None,
    resource: str | None,
    action: str | None,
    mode: str | None,
    outcome: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
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


ORG = typer.Option(None, "--org", help="Acting organisation's code.")
PROVIDER = typer.Option(None, "--provider", help="Code of the organisation whose data.")
RESOURCE = typer.Option(None, "--resource", help="Catalogue entry code.")
ACTION = typer.Option(None, "--action", help="Action; ending in '.' matches a prefix.")
MODE = typer.Option(None, "--mode", help="query, verify, bulk or subscribe.")
OUTCOME = typer.Option(None, "--outcome", help="ok, refused or error.")
SINCE = typer.Option(None, "--from", help="From this time (UTC+8 without a zone).")
UNTIL = typer.Option(None, "--to", help="Before this time (UTC+8 without a zone).")


@audit_app.command("list")
def list_command(
    ctx: typer.Context,
    org: str | None = ORG,
    provider: str | None = PROVIDER,
    resource: str | None = RESOURCE,
    action: str | None = ACTION,
    mode: str | None = MODE,
    outcome: str | None = OUTCOME,
    since: dt.datetime | None = SINCE,
    until: dt.datetime | None = UNTIL,
    limit: int = typer.Option(50, min=1, max=100_000, help="Entries to show, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List ledger entries, newest first."""
    filters = _filters(org, provider, resource, action, mode, outcome, since, until)
    with session_for(settings_of(ctx)) as session:
        rows = repo.find_entries(
            session, filters=filters, visible=None, before_id=None, limit=limit
        )
        out = [entry_out(e) for e in rows]
    if as_json:
        print_json([e.model_dump(mode="json") for e in out])
        return
    print_table(
        [
            "seq",
            "time",
            "action",
            "outcome",
            "actor",
            "org",
            "resource",
            "provider",
            "mode",
            "rows",
        ],
        [
            (
                f"{e.chain}:{e.seq}",
                e.at.astimezone(statistics.CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
                e.action,
                e.outcome,
                e.actor_name,
                e.org_code,
                e.resource_code,
                e.provider_code,
                e.mode,
                e.rows,
            )
            for e in out
        ],
        title=f"{len(out)} entries",
    )


@audit_app.command("export")
def export_command(
    ctx: typer.Context,
    fmt: ExportFormat = typer.Option(ExportFormat.CSV, "--format", help="csv or jsonl."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default stdout)."),
    org: str | None = ORG,
    provider: str | None = PROVIDER,
    resource: str | None = RESOURCE,
    action: str | None = ACTION,
    mode: str | None = MODE,
    outcome: str | None = OUTCOME,
    since: dt.datetime | None = SINCE,
    until: dt.datetime | None = UNTIL,
) -> None:
    """Export entries oldest first: CSV (UTF-8 with BOM, opens in Excel) or JSON lines."""
    filters = _filters(org, provider, resource, action, mode, outcome, since, until)
    count = 0
    with session_for(settings_of(ctx)) as session, _opened(output) as out:
        entries = repo.stream_entries(session, filters=filters, visible=None)
        if fmt is ExportFormat.CSV:
            out.write(BOM)
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for entry in entries:
                writer.writerow(csv_row(entry))
                count += 1
        else:
            for entry in entries:
                line = json.dumps(entry_out(entry).model_dump(mode="json"), ensure_ascii=False)
                out.write(line + "\n")
                count += 1
    if output is not None:
        typer.echo(f"exported {count} entries to {output}")


@contextmanager
def _opened(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        yield fh


@audit_app.command("stats")
def stats_command(
    ctx: typer.Context,
    group_by: str = typer.Option("day", "--group-by", help="day, org, resource or provider."),
    since: dt.datetime | None = typer.Option(None, "--from", formats=["%Y-%m-%d"]),
    until: dt.datetime | None = typer.Option(None, "--to", formats=["%Y-%m-%d"]),
    as_json: bool = JsonOption,
) -> None:
    """Sharing uses (rows delivered plus subjects verified) by day, org, resource or provider."""
    if group_by not in statistics.GROUPS:
        raise typer.BadParameter(f"must be one of {', '.join(statistics.GROUPS)}")
    with session_for(settings_of(ctx)) as session:
        rows = statistics.sharing_uses(
            session,
            actor=ACTOR,
            group_by=group_by,
            since=since.date() if since else None,
            until=until.date() if until else None,
        )
    if as_json:
        print_json([{"key": r.key, "uses": r.uses, "entries": r.entries} for r in rows])
        return
    total = sum(r.uses for r in rows)
    print_table(
        [group_by, "uses", "entries"],
        [(r.key, f"{r.uses:,}", r.entries) for r in rows],
        title=f"{total:,} sharing uses",
    )


@audit_app.command("purge")
def purge_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
) -> None:
    """Remove each chain's expired prefix up to a signed checkpoint (kept as the anchor)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        done = retention.purge(session, actor=ACTOR, settings=settings, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for p in done:
        typer.echo(f"chain {p.chain}: {verb} entries up to {p.through_seq} ({p.entries:,})")
    if not done:
        typer.echo("nothing to purge: no expired prefix ends at a signed checkpoint")

"""The `haihe` command: one group per domain, plus serve, demo, synth, config and db.

Every command that fails on purpose prints one line (`error: …`) and exits with status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
import uvicorn
from pydantic import ValidationError

from haihe import __version__
from haihe.app import check_database
from haihe.audit.cli import audit_app
from haihe.background import jobs_app
from haihe.catalogue.cli import catalogue_app
from haihe.core.clikit import CliState, print_json, settings_of
from haihe.core.db import make_engine
from haihe.core.errors import HaiheError
from haihe.core.identity import normalise_uscc, parse_id
from haihe.core.masking import mask_id_number
from haihe.core.settings import Settings
from haihe.demo import DEFAULT_PERSONS, run_demo
from haihe.exchange.cli import exchange_app
from haihe.governance.cli import governance_app
from haihe.migrations import current_revision, head_revision, upgrade
from haihe.orgs.cli import clients_app, orgs_app, users_app
from haihe.portal.cli import portal_app
from haihe.serving import run_workers
from haihe.synth.cli import synth_command
from haihe.verification.cli import verify_app

app = typer.Typer(
    name="haihe",
    help="Haihe (海河): a city's platform for government data sharing, exchange and open data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
config_app = typer.Typer(help="Settings (HAIHE_* variables and the TOML file).")
db_app = typer.Typer(help="The control database and its migrations.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(exchange_app, name="exchange")
app.add_typer(audit_app, name="audit")
app.add_typer(governance_app, name="governance")
app.add_typer(portal_app, name="portal")
app.add_typer(verify_app, name="verify")
app.add_typer(jobs_app, name="jobs")
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
id_app = typer.Typer(help="Resident ID numbers (GB 11643) and credit codes (GB 32100).")
app.add_typer(id_app, name="id")
app.command("synth")(synth_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"haihe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        envvar="HAIHE_CONFIG",
        help="TOML settings file (keys as in `haihe config show`).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Haihe (海河): a city's platform for government data sharing, exchange and open data."""
    ctx.obj = CliState(config)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Print the effective settings, secrets hidden."""
    view = settings_of(ctx).public_view()
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        typer.echo(f"{key} = {value}")


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Create or migrate the control database to the newest schema."""
    settings = settings_of(ctx)
    engine = make_engine(settings)
    try:
        upgrade(engine, revision)
        typer.echo(f"database at {current_revision(engine)} ({engine.url.get_backend_name()})")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's migration and the newest one this Haihe has."""
    engine = make_engine(settings_of(ctx))
    try:
        typer.echo(f"current: {current_revision(engine) or 'none'}  head: {head_revision()}")
    finally:
        engine.dispose()


@id_app.command("check")
def id_check(
    number: str = typer.Argument(..., help="An ID number (18 or legacy 15 digits)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Validate an ID number; print its normal form, birth date, sex and region."""
    rid = parse_id(number)
    info = {
        "number": rid.number,
        "masked": mask_id_number(rid.number),
        "birth_date": rid.birth_date.isoformat(),
        "sex": rid.sex,
        "region_code": rid.region_code,
        "province": rid.province,
        "legacy_input": rid.legacy,
    }
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:<13} {value}")


@id_app.command("credit-code")
def id_credit_code(
    code: str = typer.Argument(..., help="A unified social credit code (18 characters)."),
) -> None:
    """Validate a unified social credit code and print its normal form."""
    typer.echo(normalise_uscc(code))


@app.command("serve")
def serve(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(None, help="Data directory to serve."),
    host: str | None = typer.Option(None, help="Address to listen on."),
    port: int | None = typer.Option(None, help="Port to listen on."),
    workers: int | None = typer.Option(None, help="Worker processes."),
) -> None:
    """Serve the API, console and portal over an existing data directory."""
    settings = settings_of(ctx, data_dir=data_dir, host=host, port=port, workers=workers)
    check_database(settings).dispose()  # fail here, in one line, not in every worker
    serve_settings(settings)


@app.command("demo")
def demo(
    ctx: typer.Context,
    persons: int = typer.Option(DEFAULT_PERSONS, min=1, help="Size of the synthetic city."),
    data_dir: Path | None = typer.Option(None, help="Where to build it (default ./haihe-data)."),
    port: int | None = typer.Option(None, help="Port to serve on (default 8000)."),
    seed: int = typer.Option(20261121, help="Seed of the synthetic city."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Build, then exit."),
) -> None:
    """Build a synthetic city, register its members, then serve it."""
    settings = settings_of(ctx, data_dir=data_dir, port=port)
    run_demo(settings, persons=persons, seed=seed)
    if not no_serve:
        serve_settings(settings)


def serve_settings(settings: Settings) -> None:
    """Run uvicorn on the app factory; worker processes read settings from the environment."""
    os.environ["HAIHE_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["HAIHE_DATABASE_URL"] = settings.database_url
    typer.echo(f"serving on http://{settings.host}:{settings.port}/  (Ctrl-C to stop)")
    if settings.workers > 1:
        run_workers(
            "haihe.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level.lower(),
            worker_env=lambda n: {"HAIHE_AUDIT_CHAIN": f"{settings.audit_chain}.w{n}"},
        )
        return
    uvicorn.run(
        "haihe.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    """Entry point: run the CLI, turning expected errors into one line and exit status 2."""
    try:
        app(standalone_mode=True)
    except HaiheError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        typer.echo(f"error: {where}: {err['msg']}", err=True)
        sys.exit(2)

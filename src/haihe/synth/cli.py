"""``haihe synth``: generate a synthetic city with a progress bar and a summary table."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from haihe.core.errors import HaiheError, InvalidInput
from haihe.synth.schemas import CityManifest
from haihe.synth.service import (
    DEFAULT_AS_OF,
    DEFAULT_PERSONS,
    DEFAULT_SEED,
    check_request,
    generate_city,
    prepare_output,
)

DEFAULT_OUT = Path("haihe-data/synth")

app = typer.Typer(
    help="The synthetic city (合成城市) for the demo, tests and benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def parse_as_of(text: str) -> date:
    """Return the date in ``text`` (YYYY-MM-DD), or raise InvalidInput."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from None


def summary_table(manifest: CityManifest, seconds: float) -> Table:
    """Return a table of every dataset with its provider and rows, and the totals."""
    table = Table(
        "dataset",
        "provider",
        "name",
        "rows",
        "MB",
        title=f"synthetic city: {manifest.persons:,} persons, seed {manifest.seed}, "
        f"as of {manifest.as_of.isoformat()}",
    )
    for info in manifest.datasets:
        table.add_row(
            info.id, info.provider, info.name_zh, f"{info.rows:,}", f"{info.bytes / 1e6:,.1f}"
        )
    size = sum(d.bytes for d in manifest.datasets) / 1e6
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{len(manifest.datasets)} datasets",
        f"{manifest.total_rows:,}",
        f"{size:,.1f}",
    )
    rate = manifest.total_rows / seconds if seconds > 0 else 0.0
    table.caption = f"written in {seconds:,.1f} s ({rate:,.0f} rows/s)"
    return table


def synth_command(
    persons: int = typer.Option(DEFAULT_PERSONS, "--persons", help="Number of persons."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed; same seed, same files."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory to write the city into."),
    as_of: str = typer.Option(
        DEFAULT_AS_OF.isoformat(), "--as-of", help="Reference date of the data (YYYY-MM-DD)."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Write into a non-empty --out, replacing a previous city there (its manifest.json, "
        "city/, grids/, datasets/ and truth/); other files are left alone.",
    ),
) -> None:
    """Generate a synthetic Tianjin-like city: map, departments, datasets and ground truth."""
    started = time.perf_counter()
    try:
        reference_date = parse_as_of(as_of)
        check_request(persons=persons, seed=seed, as_of=reference_date)
        prepare_output(out, overwrite=force)
        with Progress(
            TextColumn("{task.description:<36}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("starting", total=1)

            def report(step: str, done: int, total: int) -> None:
                bar.update(task, description=step, completed=done, total=total)

            manifest = generate_city(
                out,
                persons=persons,
                seed=seed,
                as_of=reference_date,
                progress=report,
                overwrite=force,
            )
    except HaiheError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=140)
    console.print(summary_table(manifest, time.perf_counter() - started))
    typer.echo(f"manifest: {out / 'manifest.json'}")


@app.callback()
def synth_group() -> None:
    """The synthetic city (合成城市) for the demo, tests and benchmarks."""


app.command("synth")(synth_command)

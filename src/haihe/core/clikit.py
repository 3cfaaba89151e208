"""What every domain's CLI commands share: settings from the context, a transaction, output."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from haihe.core.db import make_engine, make_session_factory, transaction
from haihe.core.settings import Settings, load_settings

console = Console()


class CliState:
    """Per-invocation state kept on the Typer context: where settings come from."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if overrides or self._settings is None:
            self._settings = load_settings(self.config_file, **overrides)
        return self._settings


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """The effective settings for this command (``overrides`` win over env and file)."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState(None)
        ctx.find_root().obj = state
    clean = {k: v for k, v in overrides.items() if v is not None}
    return state.settings(**clean)


@contextmanager
def session_for(settings: Settings) -> Iterator[Session]:
    """A committed-on-success session on the control database (the CLI is an edge)."""
    engine = make_engine(settings)
    try:
        with transaction(make_session_factory(engine, settings)) as session:
            yield session
    finally:
        engine.dispose()


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    table = Table(*columns, title=title or None)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")

"""Reference pages generated from the code: docs/cli.md and docs/settings.md.

Regenerate both with ``python -m haihe.docgen docs``; a test fails when the docs drift.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from haihe.cli import app
from haihe.core.settings import ENV_PREFIX, Settings

WIDTH = 100


# Typer 0.29 vendors its own Click, so commands are handled by shape, not by Click's classes.
def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = [(path, command)]
    if getattr(command, "commands", None):
        for name in sorted(command.commands):
            found.extend(_walk(command.commands[name], [*path, name]))
    return found


def render_cli_reference() -> str:
    """Markdown with the help text of every `haihe` command and group."""
    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the code by `python -m haihe.docgen docs`; do not edit by hand.",
        "Every command that fails on purpose prints one line starting with `error:` and exits",
        "with status 2.",
        "",
    ]
    for path, command in _walk(root, ["haihe"]):
        if getattr(command, "hidden", False):
            continue
        parent: Any = None
        for depth in range(1, len(path)):
            parent = typer.Context(root, info_name=path[depth - 1], parent=parent)
        ctx = typer.Context(
            command,
            info_name=path[-1],
            parent=parent,
            terminal_width=WIDTH,
            max_content_width=WIDTH,
        )
        lines += [
            f"## `{' '.join(path)}`",
            "",
            "```text",
            command.get_help(ctx).rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)


def render_settings_reference() -> str:
    """Markdown table of every setting: variable, TOML key, default and help text."""
    lines = [
        "# Settings reference",
        "",
        "Generated from the code by `python -m haihe.docgen docs`; do not edit by hand.",
        "",
        "Each setting can be given as an environment variable or as a key in a TOML file named",
        "by `--config FILE` or `HAIHE_CONFIG`; the environment wins over the file.",
        "`haihe config show` prints the effective values, with secrets hidden.",
        "",
        "| variable | TOML key | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "(empty)" if default is None else f"`{default}`"
        help_text = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | `{name}` | {shown} | {help_text} |")
    return "\n".join(lines) + "\n"


def render_openapi() -> str:
    """The REST API's OpenAPI document, from an app built over a throw-away database."""
    from haihe.app import create_app
    from haihe.core.db import make_engine
    from haihe.migrations import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        engine = make_engine(settings)
        upgrade(engine)
        engine.dispose()
        app = create_app(settings)
        document = app.openapi()
        app.state.engine.dispose()
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


PAGES = {
    "cli.md": render_cli_reference,
    "settings.md": render_settings_reference,
    "openapi.json": render_openapi,
}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    for page, render in PAGES.items():
        (out / page).write_text(render(), encoding="utf-8")
        print(f"wrote {out / page}")

"""The CLI reference (docs/cli.md), generated from the commands themselves.

Regenerate with ``python -m haihe.clidocs > docs/cli.md``; a test fails when the two drift.
"""

from __future__ import annotations

from typing import Any

import typer

from haihe.cli import app

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
        "Generated from the code by `python -m haihe.clidocs > docs/cli.md`; do not edit by hand.",
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


if __name__ == "__main__":
    print(render_cli_reference(), end="")

"""Reference docs generated from the code match it (regenerate: python -m haihe.docgen docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from haihe.docgen import PAGES

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_reference_is_current(page: str) -> None:
    committed = (DOCS / page).read_text(encoding="utf-8")
    assert committed == PAGES[page](), f"docs/{page} is stale: run python -m haihe.docgen docs"


def test_every_command_is_in_the_cli_reference() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in (
        "haihe demo",
        "haihe serve",
        "haihe synth",
        "haihe orgs add",
        "haihe db upgrade",
    ):
        assert f"## `{command}`" in text

"""The console shell (login, navigation, language) — installed on the app by ``install``."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the console's routes and static files on ``app``."""

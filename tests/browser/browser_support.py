"""What the browser tests share with their fixtures: the live server and a test account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    password: str = PASSWORD


@dataclass(frozen=True)
class LiveServer:
    url: str
    sessions: sessionmaker[Session]
    home_org: str

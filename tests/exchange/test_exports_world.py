"""A small exchange world shared by the export and subscription tests (no tests of its own).

The health commission (WJW) provides death certificates, loaded through the real catalogue
load; the social-security centre (RSJ) holds a grant to use them in bulk and by subscription,
scoped to people aged 60 and over; the civil-affairs bureau (MZ) holds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, bearers, make_client, make_org, make_resource, make_user
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core.auth import Role
from haihe.core.db import transaction, utcnow
from haihe.core.identity import compose_id
from haihe.core.settings import Settings
from haihe.exchange.models import Grant, GrantBasis, GrantStatus
from haihe.orgs import service as orgs

HEADER = ("certificate_no", "id_number", "name", "death_date", "age")
ITEMS = list(HEADER)
SCOPE = [{"item": "age", "op": "ge", "value": 60}]


def death_rows(n: int, *, start: int = 0, name: str = "张") -> list[tuple[str, ...]]:
    """``n`` certificates C<start>…; ages cycle 50-89, so a quarter fall outside the scope."""
    return [
        (
            f"C{i:06d}",
            compose_id(int(f"120102{1930 + i // 1000}0101{i % 1000:03d}")),
            f"{name}{i}",
            f"2026-11-{1 + i % 20:02d}",
            str(50 + i % 40),
        )
        for i in range(start, start + n)
    ]


def load_rows(
    session: Session, settings: Settings, code: str, rows: list[tuple[str, ...]], tmp: Path
) -> int:
    """Load ``rows`` as the entry's new current version through the real load; return it."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"load-{utcnow().timestamp()}.csv"
    text = "\n".join([",".join(HEADER), *(",".join(r) for r in rows)]) + "\n"
    path.write_text(text, encoding="utf-8")
    load = load_resource(
        session, actor=ROOT, settings=settings, code=code, source=LoadSource.for_file(path)
    )
    assert load.version is not None
    return load.version


@dataclass
class World:
    code: str
    provider_id: int
    consumer_id: int
    other_id: int
    grant_id: int


def build_world(
    session: Session,
    settings: Settings,
    tmp: Path,
    rows: list[tuple[str, ...]],
    **grant: Any,
) -> World:
    """Orgs WJW, RSJ and MZ, a published entry loaded with ``rows``, and RSJ's grant."""
    wjw, rsj, mz = (
        make_org(session, code="WJW"),
        make_org(session, code="RSJ"),
        make_org(session, code="MZ"),
    )
    resource = make_resource(session, wjw)
    catalogue.publish(session, actor=ROOT, code=resource.code)
    load_rows(session, settings, resource.code, rows, tmp)
    fields: dict[str, Any] = {
        "resource_id": resource.id,
        "consumer_org_id": rsj.id,
        "items": ITEMS,
        "unmasked_items": ["name"],
        "scope": SCOPE,
        "modes": ["bulk", "subscribe"],
        "purpose": "停发已故人员养老金",
        "basis": GrantBasis.APPROVED,
        "status": GrantStatus.ACTIVE,
        "starts_at": utcnow() - dt.timedelta(hours=1),
        "expires_at": utcnow() + dt.timedelta(days=30),
        "created_by": "tests",
    }
    fields.update(grant)
    row = Grant(**fields)
    session.add(row)
    session.commit()
    return World(resource.code, wjw.id, rsj.id, mz.id, row.id)


GRANTEES = {"rsj_op", "rsj_admin", "rsj_client"}
PRINCIPALS = [
    "anon",
    "resident",
    "rsj_op",
    "rsj_admin",
    "rsj_client",
    "mz_admin",
    "wjw_admin",
    "auditor",
    "platform",
]
SIGNED_IN = set(PRINCIPALS) - {"anon"}


def sign_in(client: TestClient, factory: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    """Bearer headers for every principal of the access matrices (the orgs must exist)."""
    with transaction(factory) as s:
        rsj, mz, wjw = (orgs.get_org(s, code=c) for c in ("RSJ", "MZ", "WJW"))
        make_user(s, Role.RESIDENT, username="resident")
        make_user(s, Role.OPERATOR, org=rsj, username="rsj_op")
        make_user(s, Role.ORG_ADMIN, org=rsj, username="rsj_admin")
        make_user(s, Role.ORG_ADMIN, org=mz, username="mz_admin")
        make_user(s, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
        make_user(s, Role.AUDITOR, username="auditor")
        make_user(s, Role.PLATFORM_ADMIN, username="platform")
        api_client, secret = make_client(s, rsj)
        client_id = api_client.client_id
    users = [name for name in PRINCIPALS if name not in ("anon", "rsj_client")]
    return bearers(client, users, {"rsj_client": (client_id, secret)})


def routes_of(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of ``router``."""
    return {
        (method, route.path)
        for route in router.routes
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
    }


def expire_grant(factory: sessionmaker[Session], grant_id: int) -> None:
    with transaction(factory) as s:
        grant = s.get(Grant, grant_id)
        assert grant is not None
        grant.expires_at = utcnow() - dt.timedelta(seconds=1)

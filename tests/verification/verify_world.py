"""A small city with known truth for the verification tests (no tests of its own).

Providers: WJW (death certificates, hospital visits), MZ (cremations, 低保 holders), GA (household
register), JT (transit taps, with timestamps). Consumer: RSJ, whose client and operator hold
verify grants made here as rows (made by ``grant_all``). Person ``i`` has ID ``pid(i)``; the
rows below say, by hand, what each source knows about whom.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from factories import PASSWORD, ROOT, make_client, make_org, make_resource, make_user
from haihe.catalogue import repository
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core.auth import Role
from haihe.core.db import utcnow
from haihe.core.identity import compose_id
from haihe.core.settings import Settings
from haihe.exchange.models import Grant, GrantBasis, GrantStatus
from haihe.orgs import auth
from haihe.verification import service

ID = {"name": "id_number", "name_zh": "身份证号", "type": "string", "sensitivity": "L4",
      "personal": True, "kind": "id_number"}  # fmt: skip


def pid(i: int) -> str:
    """The ID number of person ``i`` (born 1950 + i on 1 March, region 120101)."""
    return compose_id(int(f"120101{1950 + i}0301") * 1000 + 10 + i)


def item(name: str, type_: str = "string", key: bool = False) -> dict[str, Any]:
    return {"name": name, "name_zh": name, "type": type_, "is_key": key, "nullable": not key}


SOURCES: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = {
    "deaths": (
        "WJW",
        [item("no", key=True), ID, item("death_date", "date32")],
        [
            {"no": "D0", "id_number": pid(0), "death_date": "2024-03-01"},
            {"no": "D1", "id_number": pid(1), "death_date": "2025-06-01"},
        ],
    ),
    "cremations": (
        "MZ",
        [item("no", key=True), ID, item("death_date", "date32")],
        [
            {"no": "C0", "id_number": pid(0), "death_date": "2024-03-01"},
            {"no": "C2", "id_number": pid(2), "death_date": "2024-04-01"},
        ],
    ),
    "low_income": (
        "MZ",
        [item("no", key=True), ID, item("approved_on", "date32"), item("status")],
        [
            {"no": "L3", "id_number": pid(3), "approved_on": "2023-01-01", "status": "在保"},
            {"no": "L4", "id_number": pid(4), "approved_on": "2023-01-01", "status": "停保"},
            {"no": "L5", "id_number": pid(5), "approved_on": "2025-01-01", "status": "在保"},
        ],
    ),
    "household": (
        "GA",
        [item("no", key=True), ID, item("status")],
        [
            {"no": f"H{i}", "id_number": pid(i), "status": "死亡注销" if i == 1 else "正常"}
            for i in range(6)
        ],
    ),
    "transit": (
        "JT",
        [item("no", key=True), ID, item("tapped_at", "timestamp[us]")],
        [{"no": "T6", "id_number": pid(6), "tapped_at": "2024-05-31T23:00:00"}],
    ),
    "medical": (
        "WJW",
        [item("no", key=True), ID, item("visit_date", "date32")],
        [{"no": "M7", "id_number": pid(7), "visit_date": "2024-01-15"}],
    ),
}


@dataclass
class World:
    codes: dict[str, str]  # role → catalogue code
    org_ids: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


def payments(count: int = 8) -> list[dict[str, Any]]:
    """RSJ's pension payments, the list of ``pension_death_stop``: payment ``P00i`` to person
    ``i``, P005 already stopped. On 2024-12-31 persons 0 and 2 are dead (the stop list)."""
    return [
        {"id_number": pid(i), "pension_no": f"P{i:03d}", "monthly_amount": 3000 + 100 * i,
         "status": "终止发放" if i == 5 else "正常发放"}
        for i in range(count)
    ]  # fmt: skip


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as a UTF-8 CSV file's bytes (an upload)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    return path


def build_world(
    session: Session, settings: Settings, tmp: Path, *, load: bool = True, bind: bool = True
) -> World:
    """Orgs, accounts, the six sources (loaded unless ``load`` is false) and their bindings."""
    orgs = {c: make_org(session, code=c) for c in ("WJW", "MZ", "GA", "JT", "RSJ", "CL")}
    world = World(codes={}, org_ids={c: o.id for c, o in orgs.items()})
    for role, (provider, items, rows) in SOURCES.items():
        resource = make_resource(session, orgs[provider], items=items)
        catalogue.publish(session, actor=ROOT, code=resource.code)
        if load:
            path = write_csv(tmp / f"{role}.csv", rows)
            load_resource(
                session,
                actor=ROOT,
                settings=settings,
                code=resource.code,
                source=LoadSource.for_file(path),
            )
        world.codes[role] = resource.code
        if bind:
            service.bind(session, actor=ROOT, role=role, code=resource.code)
    make_user(session, Role.OPERATOR, org=orgs["RSJ"], username="rsj_op")
    make_user(session, Role.OPERATOR, org=orgs["CL"], username="cl_op")
    make_user(session, Role.ORG_ADMIN, org=orgs["WJW"], username="wjw_admin")
    make_user(session, Role.RESIDENT, username="resident")
    make_user(session, Role.PLATFORM_ADMIN, username="platform")
    for name in ("rsj_op", "cl_op", "wjw_admin", "resident", "platform"):
        world.tokens[name], _ = auth.issue_user_token(
            session, settings=settings, username=name, password=PASSWORD
        )
    client, secret = make_client(session, orgs["RSJ"])
    world.tokens["rsj_client"], _ = auth.issue_client_token(
        session, settings=settings, client_id=client.client_id, client_secret=secret
    )
    session.commit()
    return world


def grant_all(session: Session, world: World, org: str = "RSJ", roles: Any = None) -> None:
    """Verify grants of every source (or ``roles``) to ``org``: every item, no scope."""
    now = utcnow()
    for role in roles or SOURCES:
        resource = repository.resource_by_code(session, world.codes[role])
        assert resource is not None
        session.add(
            Grant(
                resource_id=resource.id,
                consumer_org_id=world.org_ids[org],
                items=[i["name"] for i in SOURCES[role][1]],
                unmasked_items=[],
                scope=[],
                modes=["verify"],
                purpose="养老金资格认证",
                basis=GrantBasis.APPROVED,
                status=GrantStatus.ACTIVE,
                starts_at=now - dt.timedelta(hours=1),
                expires_at=now + dt.timedelta(days=30),
                created_by="tests",
            )
        )
    session.commit()

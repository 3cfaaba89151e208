"""A small city for the query-gateway tests (no tests of its own).

The public-security bureau (GA) provides a population register loaded through the real catalogue
load; the social-security centre (RSJ) holds query grants made here as rows (the gateway reads
grants, whoever made them); the civil-affairs bureau (MZ) holds none. Every person's values are
derived from their number, so a test can say independently which rows a scope lets through.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from factories import PASSWORD, ROOT, make_client, make_org, make_resource, make_system, make_user
from haihe.catalogue import repository
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core.auth import Role
from haihe.core.db import utcnow
from haihe.core.identity import compose_id
from haihe.core.settings import Settings
from haihe.exchange.models import Grant, GrantBasis, GrantStatus
from haihe.orgs import auth

DISTRICTS = ["120101", "120102", "120103", "120104"]
ITEMS: list[dict[str, Any]] = [
    {"name": "person_no", "name_zh": "人员编号", "type": "string", "is_key": True,
     "nullable": False},
    {"name": "id_number", "name_zh": "身份证号", "type": "string", "sensitivity": "L3",
     "personal": True, "kind": "id_number", "nullable": False},
    {"name": "name", "name_zh": "姓名", "type": "string", "sensitivity": "L2", "personal": True,
     "kind": "name"},
    {"name": "phone", "name_zh": "电话", "type": "string", "sensitivity": "L3",
     "personal": True, "kind": "phone"},
    {"name": "district", "name_zh": "区", "type": "string"},
    {"name": "born", "name_zh": "出生日期", "type": "date32"},
    {"name": "age", "name_zh": "年龄", "type": "int32"},
    {"name": "pension", "name_zh": "养老金", "type": "float64"},
    {"name": "pensioner", "name_zh": "是否领取养老金", "type": "bool"},
]  # fmt: skip
NAMES = [i["name"] for i in ITEMS]
PERSONAL = {"id_number", "name", "phone"}


def person(i: int) -> dict[str, Any]:
    """The register's row of person ``i`` as Python values (None where the value is missing)."""
    age = 18 + (i * 7) % 80
    born = dt.date(2026 - age, 1 + i % 12, 1 + i % 28)
    return {
        "person_no": f"P{i:05d}",
        "id_number": compose_id(int(f"{DISTRICTS[i % 4]}{born:%Y%m%d}") * 1000 + i % 1000),
        "name": f"张{'三四五六'[i % 4]}{i}",
        "phone": None if i % 5 == 0 else f"138{i:08d}",
        "district": DISTRICTS[i % 4],
        "born": born.isoformat(),
        "age": age,
        "pension": None if age < 60 else round(1000 + (i * 37) % 3000 + 0.25, 2),
        "pensioner": age >= 60,
    }


def write_csv(path: Path, people: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(NAMES)
        for p in people:
            out.writerow([_text(p[n]) for n in NAMES])
    return path


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class City:
    code: str
    org_ids: dict[str, int]
    system_ids: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


def build_city(session: Session, settings: Settings, tmp: Path, *, people: int = 60) -> City:
    """Orgs, accounts, systems and the loaded register; no grants yet (``grant`` adds them)."""
    ga, rsj, mz = (make_org(session, code=c) for c in ("GA", "RSJ", "MZ"))
    pension_sys, other_sys = make_system(session, rsj), make_system(session, rsj)
    resource = make_resource(session, ga, items=ITEMS, sharing_type="conditional")
    catalogue.publish(session, actor=ROOT, code=resource.code)
    path = write_csv(tmp / "register.csv", [person(i) for i in range(people)])
    load_resource(
        session, actor=ROOT, settings=settings, code=resource.code, source=LoadSource.for_file(path)
    )
    make_user(session, Role.OPERATOR, org=rsj, username="rsj_op")
    make_user(session, Role.ORG_ADMIN, org=mz, username="mz_admin")
    make_user(session, Role.ORG_ADMIN, org=ga, username="ga_admin")
    make_user(session, Role.RESIDENT, username="resident")
    make_user(session, Role.PLATFORM_ADMIN, username="platform")
    clients = {
        "rsj_client": make_client(session, rsj),
        "rsj_pension_client": make_client(session, rsj, pension_sys),
        "rsj_other_client": make_client(session, rsj, other_sys),
        "mz_client": make_client(session, mz),
    }
    city = City(
        code=resource.code,
        org_ids={"GA": ga.id, "RSJ": rsj.id, "MZ": mz.id},
        system_ids={"pension": pension_sys.id, "other": other_sys.id},
    )
    for name in ("rsj_op", "mz_admin", "ga_admin", "resident", "platform"):
        city.tokens[name], _ = auth.issue_user_token(
            session, settings=settings, username=name, password=PASSWORD
        )
    for name, (client, secret) in clients.items():
        city.tokens[name], _ = auth.issue_client_token(
            session, settings=settings, client_id=client.client_id, client_secret=secret
        )
    session.commit()
    return city


def grant(session: Session, city: City, **overrides: Any) -> Grant:
    """A query grant of the register to RSJ (every item, no scope, no quotas) with overrides."""
    now = utcnow()
    fields: dict[str, Any] = {
        "resource_id": _resource_id(session, city.code),
        "consumer_org_id": city.org_ids["RSJ"],
        "items": list(NAMES),
        "unmasked_items": [],
        "scope": [],
        "modes": ["query"],
        "purpose": "养老金资格认证",
        "basis": GrantBasis.APPROVED,
        "status": GrantStatus.ACTIVE,
        "starts_at": now - dt.timedelta(hours=1),
        "expires_at": now + dt.timedelta(days=30),
        "created_by": "tests",
    }
    fields.update(overrides)
    row = Grant(**fields)
    session.add(row)
    session.commit()
    return row


def _resource_id(session: Session, code: str) -> int:
    resource = repository.resource_by_code(session, code)
    assert resource is not None
    return resource.id

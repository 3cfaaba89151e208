"""Plain factories: ``make_x(session, **overrides)`` builds a row through Haihe's own services."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from haihe.catalogue import service as catalogue
from haihe.catalogue.models import Resource
from haihe.catalogue.schemas import ResourceIn
from haihe.core.auth import Role, system_principal
from haihe.orgs import auth, service
from haihe.orgs.models import ApiClient, InformationSystem, Organisation, OrgKind, User
from haihe.orgs.schemas import ClientCreate, OrgCreate, SystemCreate, UserCreate

ROOT = system_principal("tests")
PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_org(session: Session, **overrides: Any) -> Organisation:
    n = next(_seq)
    fields: dict[str, Any] = {
        "code": f"ORG{n}",
        "name_zh": f"测试单位{n}",
        "name_en": f"Test organisation {n}",
        "kind": OrgKind.MUNICIPAL_DEPARTMENT,
    }
    fields.update(overrides)
    return service.create_org(session, actor=ROOT, data=OrgCreate(**fields))


def make_system(session: Session, org: Organisation, **overrides: Any) -> InformationSystem:
    n = next(_seq)
    fields: dict[str, Any] = {"code": f"SYS{n}", "name": f"业务系统{n}"}
    fields.update(overrides)
    return service.create_system(
        session, actor=ROOT, org_code=org.code, data=SystemCreate(**fields)
    )


def make_user(
    session: Session, *roles: Role, org: Organisation | None = None, **overrides: Any
) -> User:
    n = next(_seq)
    fields: dict[str, Any] = {
        "username": f"user{n}",
        "display_name": f"用户{n}",
        "password": PASSWORD,
        "org_code": org.code if org else None,
        "roles": list(roles),
    }
    fields.update(overrides)
    return service.create_user(session, actor=ROOT, data=UserCreate(**fields))


def make_client(
    session: Session, org: Organisation, system: InformationSystem | None = None
) -> tuple[ApiClient, str]:
    n = next(_seq)
    data = ClientCreate(
        name=f"client {n}", org_code=org.code, system_code=system.code if system else None
    )
    return auth.create_client(session, actor=ROOT, data=data)


def resource_in(provider: Organisation, **overrides: Any) -> ResourceIn:
    """A valid description of a death-certificate-like entry, with overrides."""
    n = next(_seq)
    fields: dict[str, Any] = {
        "name_zh": f"死亡医学证明{n}",
        "name_en": f"Medical certificates of death {n}",
        "summary_zh": "医疗机构出具的死亡医学证明（推断）书信息。",
        "summary_en": "Medical certificates of death issued by hospitals.",
        "provider_code": provider.code,
        "base_library": "population",
        "topic": "02",
        "sharing_type": "conditional",
        "sharing_conditions": "用于社会保障待遇核查",
        "legal_basis": "《社会保险法》第十六条",
        "sharing_modes": ["query", "verify", "bulk", "subscribe"],
        "update_cycle": "daily",
        "items": [
            {
                "name": "certificate_no",
                "name_zh": "证明编号",
                "type": "string",
                "is_key": True,
                "nullable": False,
            },
            {
                "name": "id_number",
                "name_zh": "身份证号",
                "name_en": "ID number",
                "type": "string",
                "sensitivity": "L3",
                "personal": True,
                "kind": "id_number",
                "nullable": False,
            },
            {
                "name": "name",
                "name_zh": "姓名",
                "type": "string",
                "sensitivity": "L2",
                "personal": True,
                "kind": "name",
            },
            {"name": "death_date", "name_zh": "死亡日期", "type": "date32"},
            {"name": "age", "name_zh": "年龄", "type": "int32"},
        ],
    }
    fields.update(overrides)
    return ResourceIn(**fields)


def make_resource(session: Session, provider: Organisation, **overrides: Any) -> Resource:
    return catalogue.create_resource(session, actor=ROOT, data=resource_in(provider, **overrides))


def bearer(
    client: Any,
    *,
    username: str | None = None,
    password: str = PASSWORD,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> dict[str, str]:
    """The Authorization header of a token from POST /api/v1/auth/token, for a user or a client."""
    if username is not None:
        data = {"grant_type": "password", "username": username, "password": password}
    else:
        data = {
            "grant_type": "client_credentials",
            "client_id": client_id or "",
            "client_secret": client_secret or "",
        }
    r = client.post("/api/v1/auth/token", data=data)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def bearers(
    client: Any, users: Iterable[str], clients: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Headers by principal name: ``anon`` (none), each user, each ``name: (id, secret)`` client."""
    headers: dict[str, dict[str, str]] = {"anon": {}}
    for name in users:
        headers[name] = bearer(client, username=name)
    for name, (client_id, secret) in (clients or {}).items():
        headers[name] = bearer(client, client_id=client_id, client_secret=secret)
    return headers

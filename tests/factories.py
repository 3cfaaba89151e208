"""Plain factories: ``make_x(session, **overrides)`` builds a row through Haihe's own services."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

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

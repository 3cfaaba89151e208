"""A small city for the portal tests (no tests of its own).

The civil-affairs bureau (MZ) provides a register of care subsidies, loaded through the real
catalogue load three times over: one entry 无条件开放, one 有条件开放 and one 不予开放. Every
row's values are derived from its number, so a test can say independently what a view holds.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource, make_user
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core.auth import Role
from haihe.core.identity import compose_id
from haihe.core.settings import Settings
from haihe.portal import service
from haihe.portal.schemas import DatasetIn

DISTRICTS = ["和平区", "河西区", "南开区", "河北区"]
ITEMS: list[dict[str, Any]] = [
    {"name": "record_no", "name_zh": "记录编号", "type": "string", "is_key": True,
     "nullable": False},
    {"name": "id_number", "name_zh": "身份证号", "type": "string", "sensitivity": "L3",
     "personal": True, "kind": "id_number", "nullable": False},
    {"name": "name", "name_zh": "姓名", "type": "string", "sensitivity": "L2", "personal": True,
     "kind": "name"},
    {"name": "diagnosis", "name_zh": "诊断", "type": "string", "sensitivity": "L4"},
    {"name": "district", "name_zh": "区", "type": "string"},
    {"name": "granted_on", "name_zh": "发放日期", "type": "date32"},
    {"name": "age", "name_zh": "年龄", "type": "int32"},
    {"name": "amount", "name_zh": "补贴金额", "type": "float64"},
]  # fmt: skip
NAMES = [i["name"] for i in ITEMS]
PEOPLE = 60


def row(i: int) -> dict[str, Any]:
    """Record ``i`` of the register as Python values."""
    age = 60 + i % 30
    born = dt.date(2025 - age, 1 + i % 12, 1 + i % 28)
    return {
        "record_no": f"R{i:05d}",
        "id_number": compose_id(int(f"120101{born:%Y%m%d}") * 1000 + i % 1000),
        "name": f"王{'一二三四'[i % 4]}{i}",
        "diagnosis": f"诊断{i % 7}",
        "district": DISTRICTS[i % 4],
        "granted_on": (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat(),
        "age": age,
        "amount": round(100 + (i * 13) % 400 + 0.5, 2),
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(NAMES)
        for r in rows:
            out.writerow([r[n] for n in NAMES])
    return path


def loaded_resource(
    session: Session,
    settings: Settings,
    provider: Any,
    tmp: Path,
    *,
    people: int = PEOPLE,
    **overrides: Any,
) -> str:
    """A published catalogue entry of the register with ``people`` rows loaded; its code."""
    fields: dict[str, Any] = {
        "items": ITEMS,
        "name_zh": "居家养老补贴发放记录",
        "open_type": "unconditional",
        "sharing_type": "unconditional",
        "sharing_conditions": None,
        "legal_basis": None,
    }
    fields.update(overrides)
    resource = make_resource(session, provider, **fields)
    catalogue.publish(session, actor=ROOT, code=resource.code)
    path = write_csv(tmp / f"{resource.code}.csv", [row(i) for i in range(people)])
    load_resource(
        session, actor=ROOT, settings=settings, code=resource.code, source=LoadSource.for_file(path)
    )
    return resource.code


def people(session: Session) -> dict[str, Any]:
    """Orgs and accounts: MZ (provider), RS (another department), residents, admins."""
    mz, rs = make_org(session, code="MZ", name_zh="市民政局"), make_org(session, code="RS")
    make_user(session, Role.ORG_ADMIN, org=mz, username="mz_admin")
    make_user(session, Role.OPERATOR, org=mz, username="mz_op")
    make_user(session, Role.ORG_ADMIN, org=rs, username="rs_admin")
    make_user(session, Role.OPERATOR, org=rs, username="rs_op")
    make_user(session, Role.RESIDENT, username="resident")
    make_user(session, Role.RESIDENT, username="resident2")
    make_user(session, Role.AUDITOR, username="auditor")
    make_user(session, Role.PLATFORM_ADMIN, username="platform")
    return {"MZ": mz, "RS": rs}


def dataset_in(code: str, **overrides: Any) -> DatasetIn:
    fields: dict[str, Any] = {
        "resource_code": code,
        "title_zh": "居家养老补贴（按区汇总）",
        "title_en": "Home-care subsidies by district",
        "notes_zh": "各区居家养老补贴发放人数与金额。",
        "topic": "social-assistance",
        "tags": ["养老", "补贴"],
        "view": {
            "items": ["record_no", "name", "district", "granted_on", "age", "amount"],
            "masked": ["name"],
            "indexed": ["district"],
        },
    }
    fields.update(overrides)
    return DatasetIn.model_validate(fields)


def publish(session: Session, settings: Settings, code: str, **overrides: Any) -> str:
    ds = service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code, **overrides))
    return ds.name

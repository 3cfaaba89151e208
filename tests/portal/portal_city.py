"""The portal tests' shared city (no tests of its own): providers, accounts, three loaded entries
and four published datasets, built once per test module by the fixtures in ``conftest.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal_world import dataset_in, loaded_resource, people
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.core.db import Base
from haihe.core.settings import Settings
from haihe.models import import_all_models
from haihe.portal import service
from haihe.portal.schemas import ApiKeyIn, ApplicationIn


@dataclass
class City:
    """What the module's tests share: settings, sessions, published names and keys."""

    settings: Settings
    sessions: sessionmaker[Session]
    codes: dict[str, str]
    names: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    url: str = ""

    def dataset(self, name: str) -> Any:
        with self.sessions() as s:
            ds = service.get_dataset(s, ref=name)
            s.expunge(ds)
            return ds


def empty(engine: Engine) -> None:
    """Delete every row, as the shared ``db_engine`` fixture does after each test."""
    import_all_models()
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                for fk in table.foreign_keys:
                    if fk.column.table is table:
                        conn.execute(table.update().values({fk.parent.name: None}))
                conn.execute(table.delete())


def build_city(settings: Settings, sessions: sessionmaker[Session], tmp: Path) -> City:
    """Providers, accounts, three loaded entries and four published datasets."""
    with sessions() as s:
        orgs = people(s)
        codes = {
            "open": loaded_resource(s, settings, orgs["MZ"], tmp),
            "conditional": loaded_resource(
                s, settings, orgs["MZ"], tmp, open_type="conditional",
                open_conditions="仅用于养老服务研究，不得再识别个人",
            ),
            "closed": loaded_resource(
                s, settings, orgs["MZ"], tmp, open_type="not_open", name_zh="不开放的名册"
            ),
        }  # fmt: skip
        names = {}
        for key, code, extra in [
            ("records", codes["open"], {"name": "care-subsidies"}),
            (
                "by_district",
                codes["open"],
                {
                    "name": "care-subsidies-by-district",
                    "title_zh": "居家养老补贴按区统计",
                    "topic": "social-assistance",
                    "tags": ["养老", "统计"],
                    "licence_id": "cc-zero",
                    "view": {
                        "aggregate": {
                            "group_by": ["district"],
                            "measures": [
                                {"name": "people", "fn": "count"},
                                {"name": "total", "fn": "sum", "item": "amount"},
                            ],
                        },
                        "indexed": ["district"],
                    },
                },
            ),
            (
                "older",
                codes["open"],
                {
                    "name": "care-subsidies-80-plus",
                    "title_zh": "八十岁以上老人补贴",
                    "topic": "health",
                    "tags": ["高龄"],
                    "view": {
                        "items": ["record_no", "district", "age", "amount"],
                        "where": [{"item": "age", "op": "ge", "value": 80}],
                    },
                },
            ),
            (
                "conditional",
                codes["conditional"],
                {"name": "care-subsidies-detail", "title_zh": "居家养老补贴明细（有条件）"},
            ),
        ]:
            ds = service.publish(s, actor=ROOT, settings=settings, data=dataset_in(code, **extra))
            names[key] = ds.name
        s.commit()
        resident = user(s, "resident")
        _key, secret = service.create_api_key(s, actor=resident, data=ApiKeyIn(name="研究"))
        wanted = ApplicationIn(
            dataset=names["conditional"], purpose="养老服务研究", accept_terms=True
        )
        app = service.apply(s, actor=resident, data=wanted)
        service.decide(s, actor=ROOT, app_id=app.id, approve=True, reason=None)
        resident2 = user(s, "resident2")
        _key2, secret2 = service.create_api_key(s, actor=resident2, data=ApiKeyIn(name="无权"))
        s.commit()
    return City(
        settings=settings,
        sessions=sessions,
        codes=codes,
        names=names,
        keys={"resident": secret, "resident2": secret2},
    )


def user(session: Session, username: str) -> Any:
    """The principal of the user ``username``, as their sign-in would make it."""
    from haihe.orgs import auth
    from haihe.orgs import service as orgs

    principal = auth.principal_of_user(orgs.get_user(session, username=username))
    assert principal is not None
    return principal

"""A small city for governance tests: one district, two streets, four communities, eight cells,
their member organisations, two departments, users of every part, and a hotline API client."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT, make_client, make_org, make_user
from haihe.core.auth import Role
from haihe.governance import categories, grids, keys
from haihe.governance.models import AreaLevel
from haihe.governance.schemas import Open311KeyIn
from haihe.orgs.models import OrgKind

# district 120101 spans lng 117.0-117.4, lat 39.0-39.2; each street is half of it (west, east),
# each community a half of its street (south, north), each cell a half of its community.
DISTRICT = "120101"
STREETS = ("120101001", "120101002")
COMMUNITIES = ("120101001001", "120101001002", "120101002001", "120101002002")
CELLS = tuple(f"{c}{i:03d}" for c in COMMUNITIES for i in (1, 2))
# a point well inside cell 120101001001001 (the south-west corner)
INSIDE = (117.05, 39.02)
OUTSIDE = (116.0, 38.0)


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
    }


def features() -> dict[AreaLevel, list[dict[str, Any]]]:
    """One FeatureCollection body per level, parents named as the synthetic city names them."""
    out: dict[AreaLevel, list[dict[str, Any]]] = {lvl: [] for lvl in AreaLevel}

    def add(level: AreaLevel, code: str, name: str, geom: dict[str, Any], **props: str) -> None:
        out[level].append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"code": code, "name_zh": name, "name_en": f"{code}", **props},
                "geometry": geom,
            }
        )

    add(AreaLevel.DISTRICT, DISTRICT, "和平区", box(117.0, 39.0, 117.4, 39.2))
    for s, street in enumerate(STREETS):
        x0 = 117.0 + 0.2 * s
        add(
            AreaLevel.STREET,
            street,
            ["劝业场街道", "小白楼街道"][s],
            box(x0, 39.0, x0 + 0.2, 39.2),
            district_code=DISTRICT,
        )
        for c in range(2):
            community = COMMUNITIES[s * 2 + c]
            y0 = 39.0 + 0.1 * c
            name = ["花园社区", "新兴社区", "南营门社区", "五大道社区"][s * 2 + c]
            add(
                AreaLevel.COMMUNITY,
                community,
                name,
                box(x0, y0, x0 + 0.2, y0 + 0.1),
                street_code=street,
                district_code=DISTRICT,
            )
            for g in range(2):
                cell = f"{community}{g + 1:03d}"
                gx = x0 + 0.1 * g
                add(
                    AreaLevel.CELL,
                    cell,
                    f"{name}第{g + 1}网格",
                    box(gx, y0, gx + 0.1, y0 + 0.1),
                    community_code=community,
                    street_code=street,
                    district_code=DISTRICT,
                )
    return out


def collection(level: AreaLevel) -> bytes:
    body = {"type": "FeatureCollection", "features": features()[level]}
    return json.dumps(body, ensure_ascii=False).encode()


def png(size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class GovWorld:
    """Codes and credentials of the small city; ``key`` is the hotline's Open311 api_key."""

    key: str = ""
    client_id: str = ""
    client_secret: str = ""
    users: dict[str, str] = field(default_factory=dict)  # name → role summary


USERS: dict[str, tuple[str | None, tuple[Role, ...]]] = {
    "platform": (None, (Role.PLATFORM_ADMIN,)),
    "auditor": (None, (Role.AUDITOR,)),
    "resident": (None, (Role.RESIDENT,)),
    "district_op": (DISTRICT, (Role.OPERATOR,)),
    "street_op": (STREETS[0], (Role.OPERATOR,)),
    "street_admin": (STREETS[0], (Role.ORG_ADMIN,)),
    "other_street_op": (STREETS[1], (Role.OPERATOR,)),
    "community_op": (COMMUNITIES[0], (Role.OPERATOR,)),
    "worker": (COMMUNITIES[0], (Role.GRID_WORKER,)),
    "cgw_officer": ("CGW", (Role.OFFICER,)),
    "jt_officer": ("JT", (Role.OFFICER,)),
    "city_op": ("120000", (Role.OPERATOR,)),
}


def build(factory: sessionmaker[Session], *, with_grids: bool = True) -> GovWorld:
    """Register the members, the grid map, the built-in categories, users and the hotline."""
    world = GovWorld()
    with factory() as s:
        make_org(s, code="120000", name_zh="天津市", kind=OrgKind.CITY)
        make_org(s, code=DISTRICT, name_zh="和平区", kind=OrgKind.DISTRICT, parent_code="120000")
        for street in STREETS:
            make_org(
                s, code=street, name_zh=f"街道{street}", kind=OrgKind.STREET, parent_code=DISTRICT
            )
        for community in COMMUNITIES:
            make_org(
                s,
                code=community,
                name_zh=f"社区{community}",
                kind=OrgKind.COMMUNITY,
                parent_code=community[:9],
            )
        for code in ("CGW", "JT", "HOTLINE"):
            make_org(s, code=code, name_zh=f"部门{code}", parent_code="120000")
        for name, (org, roles) in USERS.items():
            make_user(
                s, *roles, org=grids.orgs.find_org(s, code=org) if org else None, username=name
            )
        client, secret = make_client(s, grids.orgs.get_org(s, code="HOTLINE"))
        world.client_id, world.client_secret = client.client_id, secret
        categories.import_categories(s, actor=ROOT)
        if with_grids:
            for level in (
                AreaLevel.DISTRICT,
                AreaLevel.STREET,
                AreaLevel.COMMUNITY,
                AreaLevel.CELL,
            ):
                grids.import_geojson(s, actor=ROOT, data=collection(level), level=level)
            grids.assign_worker(s, actor=ROOT, cell_code=CELLS[0], username="worker")
        _row, world.key = keys.create_key(
            s, actor=ROOT, data=Open311KeyIn(client_id=client.client_id, name="12345 热线")
        )
        s.commit()
    return world

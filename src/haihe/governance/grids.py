"""The grid map — 网格: importing GeoJSON level by level, and assigning grid workers to cells.

Levels are imported top-down (districts, streets, communities, cells); each feature names its
parent in a property (``district_code`` for a street, ``street_code`` for a community,
``community_code`` for a cell, or ``parent_code``). An area is linked to the member organisation
whose code is the area's own code (as the synthetic city and the demo register them) or the
feature's ``org_code``. Re-importing a code updates it. Every import moves the grid revision on,
so each process rebuilds its point-in-cell index on its next lookup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden, InvalidInput, NotFound
from haihe.governance import repository as repo
from haihe.governance.models import Area, AreaLevel, CellWorker
from haihe.governance.schemas import GridImportOut
from haihe.orgs import service as orgs
from haihe.orgs.models import OrgKind

PARENT_LEVEL: dict[AreaLevel, AreaLevel | None] = {
    AreaLevel.DISTRICT: None,
    AreaLevel.STREET: AreaLevel.DISTRICT,
    AreaLevel.COMMUNITY: AreaLevel.STREET,
    AreaLevel.CELL: AreaLevel.COMMUNITY,
}
PARENT_PROPERTY = {
    AreaLevel.STREET: "district_code",
    AreaLevel.COMMUNITY: "street_code",
    AreaLevel.CELL: "community_code",
}
ORG_KIND = {
    AreaLevel.DISTRICT: OrgKind.DISTRICT,
    AreaLevel.STREET: OrgKind.STREET,
    AreaLevel.COMMUNITY: OrgKind.COMMUNITY,
}
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Feature:
    code: str
    name_zh: str
    name_en: str | None
    parent_code: str | None
    org_code: str | None
    geometry: str
    bounds: tuple[float, float, float, float]
    centre: tuple[float, float]


def import_geojson(
    session: Session, *, actor: Principal, data: bytes | str, level: AreaLevel
) -> GridImportOut:
    """Create or update the areas of one level from a GeoJSON FeatureCollection."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin may import grids")
    if level not in PARENT_LEVEL:
        raise InvalidInput(
            f"grids are imported as district, street, community or cell, not {level}"
        )
    features = _parse(data, level)
    parents = _parents(session, features, level)
    org_ids = _org_ids(session, features, level)
    existing = repo.areas_by_codes(session, [f.code for f in features])
    clash = [a.code for a in existing.values() if a.level is not level]
    if clash:
        raise InvalidInput(
            f"codes already used at another level: {', '.join(clash[:MAX_PROBLEMS])}"
        )
    created = updated = linked = 0
    now = utcnow()
    for f in features:
        area = existing.get(f.code)
        if area is None:
            area = Area(code=f.code, level=level, created_at=now)
            session.add(area)
            created += 1
        else:
            updated += 1
        parent = parents.get(f.parent_code or "")
        area.parent_id = parent.id if parent else None
        area.district_id, area.street_id, area.community_id = _ancestors(level, parent)
        area.name_zh, area.name_en = f.name_zh, f.name_en
        area.org_id = org_ids.get(f.org_code or f.code, area.org_id)
        linked += area.org_id is not None
        area.geometry = f.geometry
        area.min_lng, area.min_lat, area.max_lng, area.max_lat = f.bounds
        area.centre_lng, area.centre_lat = f.centre
        area.updated_at = now
    session.flush()
    revision = repo.bump_grid_revision(session, now)
    audit.record(
        session,
        actor=actor,
        action="governance.grids.import",
        detail={"level": level.value, "created": created, "updated": updated},
    )
    return GridImportOut(
        level=level, created=created, updated=updated, linked_to_orgs=linked, revision=revision
    )


def _parse(data: bytes | str, level: AreaLevel) -> list[Feature]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the file is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput("expected a GeoJSON FeatureCollection")
    raw = doc.get("features")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("the FeatureCollection has no features")
    problems: list[str] = []
    features: list[Feature] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        try:
            feature = _feature(item, level)
        except ValueError as exc:
            problems.append(f"feature {i + 1}: {exc}")
            continue
        if feature.code in seen:
            problems.append(f"feature {i + 1}: code {feature.code} appears twice")
        seen.add(feature.code)
        features.append(feature)
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise InvalidInput("; ".join(problems[:MAX_PROBLEMS]) + more, details=problems[:100])
    return features


def _feature(item: Any, level: AreaLevel) -> Feature:
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    props = item.get("properties") or {}
    code = str(props.get("code") or item.get("id") or "").strip()
    if not code or len(code) > 32:
        raise ValueError("needs a code (properties.code or id) of 1-32 characters")
    name_zh = str(props.get("name_zh") or props.get("name") or "").strip()
    if not name_zh:
        raise ValueError(f"{code}: needs a name (properties.name_zh)")
    parent_code = None
    if level in PARENT_PROPERTY:
        parent_code = props.get(PARENT_PROPERTY[level]) or props.get("parent_code")
        if not parent_code:
            raise ValueError(f"{code}: needs its parent ({PARENT_PROPERTY[level]})")
    geometry = item.get("geometry")
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except (shapely.errors.GEOSException, ValueError, TypeError):
        raise ValueError(f"{code}: the geometry cannot be read") from None
    if shape.geom_type not in ("Polygon", "MultiPolygon") or shape.is_empty:
        raise ValueError(f"{code}: the geometry must be a Polygon or MultiPolygon")
    if not shape.is_valid:
        raise ValueError(f"{code}: invalid polygon ({shapely.is_valid_reason(shape)})")
    min_x, min_y, max_x, max_y = shape.bounds
    if not (-180 <= min_x <= max_x <= 180 and -90 <= min_y <= max_y <= 90):
        raise ValueError(f"{code}: coordinates must be WGS 84 longitude/latitude")
    inside = shape.representative_point() if not shape.centroid.within(shape) else shape.centroid
    return Feature(
        code=code,
        name_zh=name_zh[:200],
        name_en=(str(props["name_en"])[:200] if props.get("name_en") else None),
        parent_code=str(parent_code) if parent_code else None,
        org_code=str(props["org_code"]) if props.get("org_code") else None,
        geometry=shapely.to_geojson(shape),
        bounds=(min_x, min_y, max_x, max_y),
        centre=(inside.x, inside.y),
    )


def _parents(session: Session, features: list[Feature], level: AreaLevel) -> dict[str, Area]:
    wanted = PARENT_LEVEL[level]
    if wanted is None:
        return {}
    found = repo.areas_by_codes(session, {f.parent_code for f in features if f.parent_code})
    missing = sorted(
        {
            str(f.parent_code)
            for f in features
            if f.parent_code not in found or found[f.parent_code].level is not wanted
        }
    )
    if missing:
        raise InvalidInput(
            f"parent {wanted.value}s not imported yet: {', '.join(missing[:5])}; "
            f"import the {wanted.value} level first"
        )
    return found


def _org_ids(session: Session, features: list[Feature], level: AreaLevel) -> dict[str, int]:
    kind = ORG_KIND.get(level)
    out: dict[str, int] = {}
    if kind is not None:
        rows, _ = orgs.list_orgs(session, kind=kind, limit=1_000_000)
        out = {o.code: o.id for o in rows}
    for f in features:
        if f.org_code and f.org_code not in out:
            org = orgs.find_org(session, code=f.org_code)
            if org is None:
                raise InvalidInput(f"{f.code}: organisation {f.org_code!r} does not exist")
            out[f.org_code] = org.id
    return out


def _ancestors(level: AreaLevel, parent: Area | None) -> tuple[int | None, int | None, int | None]:
    """(district, street, community) ids of an area at ``level`` under ``parent``."""
    if parent is None:
        return None, None, None
    if level is AreaLevel.STREET:
        return parent.id, None, None
    if level is AreaLevel.COMMUNITY:
        return parent.district_id, parent.id, None
    return parent.district_id, parent.street_id, parent.id


# ---------------------------------------------------------------- reading


def get_area(session: Session, *, code: str) -> Area:
    area = repo.area_by_code(session, code)
    if area is None:
        raise NotFound(f"area {code!r} does not exist")
    return area


def list_areas(
    session: Session,
    *,
    level: AreaLevel | None = None,
    parent_code: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[Area], int]:
    parent_id = get_area(session, code=parent_code).id if parent_code else None
    return repo.list_areas(
        session, level=level, parent_id=parent_id, q=q, limit=limit, offset=offset
    )


def area_geojson(session: Session, *, level: AreaLevel, within: str | None) -> dict[str, Any]:
    """A FeatureCollection of the areas at ``level`` (under the street or district ``within``)."""
    parent_id = get_area(session, code=within).id if within else None
    features = [
        {
            "type": "Feature",
            "id": a.code,
            "properties": {"name": a.name_zh, "code": a.code, "name_en": a.name_en},
            "geometry": json.loads(a.geometry),
        }
        for a in repo.area_shapes(session, level, parent_id)
    ]
    return {"type": "FeatureCollection", "features": features}


# ---------------------------------------------------------------- grid workers


def _require_area_admin(session: Session, actor: Principal, cell: Area) -> None:
    if actor.is_platform_admin:
        return
    if actor.has(Role.ORG_ADMIN) and actor.org_id is not None:
        chain = repo.areas_by_ids(
            session, [i for i in (cell.community_id, cell.street_id, cell.district_id) if i]
        )
        if any(a.org_id == actor.org_id for a in chain.values()):
            return
    raise Forbidden(
        "only the platform admin or an admin of the cell's community, street or "
        "district may assign grid workers"
    )


def assign_worker(
    session: Session, *, actor: Principal, cell_code: str, username: str
) -> CellWorker:
    """Assign the grid worker ``username`` to the cell ``cell_code`` (idempotent)."""
    cell = get_area(session, code=cell_code)
    if cell.level is not AreaLevel.CELL:
        raise InvalidInput(f"{cell_code} is a {cell.level.value}, not a grid cell")
    _require_area_admin(session, actor, cell)
    user = orgs.get_user(session, username=username)
    if Role.GRID_WORKER not in user.roles:
        raise InvalidInput(f"user {username!r} does not hold the grid_worker role")
    found = repo.assignment(session, cell.id, user.id)
    if found is not None:
        return found
    row = CellWorker(cell_id=cell.id, user_id=user.id, assigned_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="governance.grids.assign",
        detail={"cell": cell.code, "user": user.username},
    )
    return row


def unassign_worker(session: Session, *, actor: Principal, cell_code: str, username: str) -> None:
    cell = get_area(session, code=cell_code)
    _require_area_admin(session, actor, cell)
    user = orgs.get_user(session, username=username)
    if not repo.unassign(session, cell.id, user.id):
        raise NotFound(f"{username} is not assigned to {cell_code}")
    audit.record(
        session,
        actor=actor,
        action="governance.grids.unassign",
        detail={"cell": cell.code, "user": user.username},
    )

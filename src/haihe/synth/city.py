"""The city's members and map as data: districts, streets, communities, departments, institutions,
grid cells (Parquet) and the four GeoJSON layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from haihe.core.identity import compose_uscc
from haihe.synth import reference
from haihe.synth.arrays import coords, stream, unique_ints
from haihe.synth.context import Context
from haihe.synth.geo import CityMap, Level, box_area_km2


def organisation_codes(seed: int, name: str, count: int) -> list[str]:
    """Return ``count`` distinct 8-digit organisation-code bodies for ``compose_uscc``."""
    values = unique_ints(stream(seed, name), 10_000_000, 100_000_000, count)
    return [f"{v:08d}" for v in values]


def department_usccs(seed: int) -> tuple[list[str], list[str]]:
    """Return the unified social credit codes of the departments and of the institutions."""
    departments = reference.rows("departments")
    bodies = organisation_codes(seed, "departments.uscc", len(departments) + 5)
    org_type = {"institution": "2", "mass": "3"}
    dept = [
        compose_uscc("1", org_type.get(row["category"], "1"), reference.CITY_REGION_CODE, body)
        for row, body in zip(departments, bodies, strict=False)
    ]
    inst = [
        compose_uscc("9", "1", reference.CITY_REGION_CODE, body)
        for body in bodies[len(departments) :]
    ]
    return dept, inst


def _bbox_columns(level: Level) -> dict[str, pa.Array]:
    lat, lng = level.centre
    return {
        "centre_lat": coords(lat),
        "centre_lng": coords(lng),
        "min_lng": coords(level.bbox[:, 0]),
        "min_lat": coords(level.bbox[:, 1]),
        "max_lng": coords(level.bbox[:, 2]),
        "max_lat": coords(level.bbox[:, 3]),
    }


def write_city(ctx: Context) -> None:
    """Write districts, streets, communities, departments, institutions and grid cells."""
    city, pop = ctx.city, ctx.pop
    resident = pop.resident
    n_comm = len(city.communities)
    residents = np.bincount(pop.community[resident], minlength=n_comm)
    # Households with at least one resident, counted where they live.
    first = np.r_[True, np.diff(pop.household) != 0]
    lived_in = np.zeros(int(pop.household[-1]) + 1, np.bool_)
    lived_in[pop.household[resident]] = True
    households = np.bincount(pop.community[first & lived_in[pop.household]], minlength=n_comm)
    cells_per_comm = np.bincount(city.cells.parent, minlength=n_comm)
    s_of_c = city.communities.parent
    d_of_s = city.streets.parent
    n_str, n_dis = len(city.streets), len(city.districts)
    street_res = np.bincount(s_of_c, weights=residents, minlength=n_str).astype(np.int64)
    street_comm = np.bincount(s_of_c, minlength=n_str)
    street_cells = np.bincount(s_of_c, weights=cells_per_comm, minlength=n_str).astype(np.int64)

    d = city.districts
    ctx.emit(
        "MZ.districts",
        {
            "region_code": pa.array(d.codes),
            "name_zh": pa.array(d.name_zh),
            "name_en": pa.array(d.name_en),
            **_bbox_columns(d),
            "centre_lat": coords(city.district_centres[:, 0]),
            "centre_lng": coords(city.district_centres[:, 1]),
            "streets": pa.array(np.bincount(d_of_s, minlength=n_dis)),
            "communities": pa.array(
                np.bincount(d_of_s, weights=street_comm, minlength=n_dis).astype(np.int64)
            ),
            "cells": pa.array(
                np.bincount(d_of_s, weights=street_cells, minlength=n_dis).astype(np.int64)
            ),
            "residents": pa.array(
                np.bincount(d_of_s, weights=street_res, minlength=n_dis).astype(np.int64)
            ),
        },
    )
    s = city.streets
    ctx.emit(
        "MZ.streets",
        {
            "street_code": pa.array(s.codes),
            "district_code": pa.array([d.codes[i] for i in s.parent]),
            "name_zh": pa.array(s.name_zh),
            "name_en": pa.array(s.name_en),
            "kind": pa.array(s.kind),
            **_bbox_columns(s),
            "communities": pa.array(street_comm),
            "cells": pa.array(street_cells),
            "residents": pa.array(street_res),
        },
    )
    c = city.communities
    ctx.emit(
        "MZ.communities",
        {
            "community_code": pa.array(c.codes),
            "street_code": pa.array([s.codes[i] for i in c.parent]),
            "district_code": pa.array([d.codes[d_of_s[i]] for i in c.parent]),
            "name_zh": pa.array(c.name_zh),
            "name_en": pa.array(c.name_en),
            "kind": pa.array(c.kind),
            **_bbox_columns(c),
            "cells": pa.array(cells_per_comm),
            "households": pa.array(households),
            "residents": pa.array(residents),
        },
    )
    _write_members(ctx)
    _write_cells(ctx)
    _write_geojson(ctx)


def _write_members(ctx: Context) -> None:
    departments = reference.rows("departments")
    institutions = reference.rows("institutions")
    dept_uscc, inst_uscc = department_usccs(ctx.seed)
    ctx.department_uscc = pa.array(dept_uscc, pa.string())
    ctx.emit(
        "BB.departments",
        {
            "code": pa.array([r["code"] for r in departments]),
            "name_zh": pa.array([r["name_zh"] for r in departments]),
            "name_en": pa.array([r["name_en"] for r in departments]),
            "category": pa.array([r["category"] for r in departments]),
            "category_zh": pa.array([reference.CATEGORY_ZH[r["category"]] for r in departments]),
            "uscc": ctx.department_uscc,
            "region_code": pa.array([reference.CITY_REGION_CODE] * len(departments)),
        },
    )
    ctx.emit(
        "DSJ.institutions",
        {
            "code": pa.array([r["code"] for r in institutions]),
            "name_zh": pa.array([r["name_zh"] for r in institutions]),
            "name_en": pa.array([r["name_en"] for r in institutions]),
            "service": pa.array([r["service"] for r in institutions]),
            "uscc": pa.array(inst_uscc),
            "region_code": pa.array([reference.CITY_REGION_CODE] * len(institutions)),
        },
    )


def _ring(box: np.ndarray) -> list[list[float]]:
    """Return the closed, counter-clockwise exterior ring of a box (RFC 7946)."""
    x0, y0, x1, y1 = (round(float(v), 6) for v in box)
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _wkt(box: np.ndarray) -> str:
    ring = _ring(box)
    return "POLYGON((" + ", ".join(f"{x:.6f} {y:.6f}" for x, y in ring) + "))"


def _write_cells(ctx: Context) -> None:
    city = ctx.city
    g = city.cells
    comm = g.parent
    street = city.communities.parent[comm]
    district = city.streets.parent[street]
    ctx.emit(
        "ZFW.grid_cells",
        {
            "cell_code": pa.array(g.codes),
            "community_code": ctx.code_column("communities", comm),
            "street_code": ctx.code_column("streets", street),
            "district_code": ctx.code_column("districts", district),
            "name_zh": pa.array(g.name_zh),
            "name_en": pa.array(g.name_en),
            **_bbox_columns(g),
            "area_km2": coords(box_area_km2(g.bbox), 4),
            "wkt": pa.array([_wkt(b) for b in g.bbox]),
        },
    )


def _features(level: Level, parents: dict[str, list[str]]) -> list[dict[str, Any]]:
    features = []
    for i, code in enumerate(level.codes):
        props: dict[str, Any] = {"code": code, "name_zh": level.name_zh[i]}
        props["name_en"] = level.name_en[i]
        props["kind"] = level.kind[i]
        props.update({key: values[i] for key, values in parents.items()})
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": props,
                "geometry": {"type": "Polygon", "coordinates": [_ring(level.bbox[i])]},
            }
        )
    return features


def _write_geojson(ctx: Context) -> None:
    city: CityMap = ctx.city
    d, s, c, g = city.districts, city.streets, city.communities, city.cells
    s_district = [d.codes[i] for i in s.parent]
    c_street = [s.codes[i] for i in c.parent]
    c_district = [s_district[i] for i in c.parent]
    ctx.writer.geojson("districts", _features(d, {}))
    ctx.writer.geojson("streets", _features(s, {"district_code": s_district}))
    ctx.writer.geojson(
        "communities", _features(c, {"street_code": c_street, "district_code": c_district})
    )
    ctx.writer.geojson(
        "cells",
        _features(
            g,
            {
                "community_code": [c.codes[i] for i in g.parent],
                "street_code": [c_street[i] for i in g.parent],
                "district_code": [c_district[i] for i in g.parent],
            },
        ),
    )

"""The map: codes extend their parents, cells tile communities without overlap, GeoJSON is sound."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from haihe.synth.geo import build_map, level_counts

EPS = 1e-9


def _boxes(rows):
    return np.array([[r["min_lng"], r["min_lat"], r["max_lng"], r["max_lat"]] for r in rows])


def _overlap_area(a, b):
    """Area of the intersection of every box in ``a`` with every box in ``b`` (degrees²)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _inside(inner, outer):
    return bool(
        (inner[0] >= outer[0] - EPS)
        & (inner[1] >= outer[1] - EPS)
        & (inner[2] <= outer[2] + EPS)
        & (inner[3] <= outer[3] + EPS)
    )


def test_codes_extend_the_parent_code(city_dir):
    streets = pq.read_table(city_dir / "city" / "streets.parquet").to_pylist()
    communities = pq.read_table(city_dir / "city" / "communities.parquet").to_pylist()
    cells = pq.read_table(city_dir / "grids" / "cells.parquet").to_pylist()
    assert all(
        len(s["street_code"]) == 9 and s["street_code"][:6] == s["district_code"] for s in streets
    )
    assert all(
        len(c["community_code"]) == 12 and c["community_code"][:9] == c["street_code"]
        for c in communities
    )
    assert all(g["cell_code"][:12] == g["community_code"] for g in cells)
    for s in streets:
        suffix = "镇" if s["kind"] == "镇" else "街道"
        assert s["name_zh"].endswith(suffix)
        assert s["name_en"].isascii()
        assert (int(s["street_code"][6:]) >= 100) == (s["kind"] == "镇")
    for c in communities:
        assert c["name_zh"].endswith("村" if c["kind"] == "村" else "社区")
        assert (int(c["community_code"][9:]) >= 200) == (c["kind"] == "村")


def test_every_community_lies_in_exactly_one_street(city_dir):
    streets = pq.read_table(city_dir / "city" / "streets.parquet").to_pylist()
    communities = pq.read_table(city_dir / "city" / "communities.parquet").to_pylist()
    s_boxes, c_boxes = _boxes(streets), _boxes(communities)
    overlap = _overlap_area(c_boxes, s_boxes)
    holders = (overlap > 1e-12).sum(axis=1)
    assert (holders == 1).all()
    codes = [s["street_code"] for s in streets]
    for i, c in enumerate(communities):
        parent = codes.index(c["street_code"])
        assert _inside(c_boxes[i], s_boxes[parent])
    assert all(
        n >= 3 for n in np.unique([c["street_code"] for c in communities], return_counts=True)[1]
    )


def test_cells_cover_each_community_and_never_overlap(city_dir):
    communities = pq.read_table(city_dir / "city" / "communities.parquet").to_pylist()
    cells = pq.read_table(city_dir / "grids" / "cells.parquet").to_pylist()
    g_boxes = _boxes(cells)
    overlap = _overlap_area(g_boxes, g_boxes)
    np.fill_diagonal(overlap, 0)
    assert overlap.max() < 1e-12
    by_comm = {}
    for i, g in enumerate(cells):
        by_comm.setdefault(g["community_code"], []).append(i)
    assert len(by_comm) == len(communities)
    for c in communities:
        box = _boxes([c])[0]
        members = g_boxes[by_comm[c["community_code"]]]
        assert len(members) >= 2
        assert len(members) == c["cells"]
        assert all(_inside(m, box) for m in members)
        assert abs(_area(members).sum() - _area(box[None, :])[0]) < 1e-6 * _area(box[None, :])[0]


def test_districts_do_not_overlap(city_dir):
    boxes = _boxes(pq.read_table(city_dir / "city" / "districts.parquet").to_pylist())
    overlap = _overlap_area(boxes, boxes)
    np.fill_diagonal(overlap, 0)
    assert overlap.max() < 1e-12


@pytest.mark.parametrize("level", ["districts", "streets", "communities", "cells"])
def test_geojson_layers_are_closed_ccw_polygons_matching_the_tables(city_dir, manifest, level):
    doc = json.loads((city_dir / "grids" / f"{level}.geojson").read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    info = next(g for g in manifest.geo if g.level == level)
    assert len(doc["features"]) == info.features > 0
    for feature in doc["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon"
        assert ring[0] == ring[-1]
        assert len(ring) == 5
        xs, ys = np.array(ring)[:, 0], np.array(ring)[:, 1]
        signed = np.sum(xs[:-1] * ys[1:] - xs[1:] * ys[:-1]) / 2
        assert signed > 0  # counter-clockwise exterior (RFC 7946)
        assert 116.0 < xs.min()
        assert xs.max() < 118.5
        assert 38.5 < ys.min()
        assert ys.max() < 40.5
        assert feature["properties"]["code"] == feature["id"]


def test_counts_reach_tianjin_scale_and_stay_positive_when_tiny():
    assert level_counts(13_600_000) == (250, 5_200, 22_000)
    streets, communities, cells = level_counts(300)
    assert streets >= 48
    assert communities >= 3 * streets
    assert cells >= 2 * communities
    full = build_map(5, 13_600_000)
    assert len(full.cells) == 22_000
    assert len(set(full.cells.codes)) == 22_000

"""Benchmark: point → grid cell lookup, vectorised STRtree against two baselines.

Builds the synthetic city's full-scale map (``--cells`` cells, default 22,000, as Tianjin has),
then places ``--points`` random points (default 2,000,000; 5 % outside every cell) with
``GridIndex.positions``: one ``STRtree.query`` over a shapely array of points, then an exact
vectorised ``intersects_xy`` on the prepared candidate polygons. Checks the answers against two
baselines on a sample: a numpy bounding-box filter per point (exact here: synthetic cells are
rectangles) and the same STRtree queried point by point. Prints points/s and the ratios.

    .venv/bin/python benchmarks/governance_lookup.py [--points 2000000] [--cells 22000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely

from haihe.governance.lookup import GridIndex
from haihe.synth.geo import build_map, level_counts

TARGET = 400_000


def cells_map(wanted: int) -> np.ndarray:
    """Boxes (min_lng, min_lat, max_lng, max_lat) of a synthetic city of about ``wanted`` cells."""
    persons = 13_600_000
    while level_counts(persons)[2] > wanted and persons > 10_000:
        persons = int(persons * 0.9)
    return build_map(20261121, persons).cells.bbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--cells", type=int, default=22_000)
    parser.add_argument("--sample", type=int, default=20_000, help="Points for the slow loop.")
    args = parser.parse_args()

    started = time.perf_counter()
    boxes = cells_map(args.cells)
    polygons = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    index = GridIndex(
        "1",
        ids=list(range(1, len(boxes) + 1)),
        codes=[str(i) for i in range(len(boxes))],
        parents=[(None, None, None)] * len(boxes),
        geometries=list(shapely.to_geojson(polygons)),
    )
    print(f"{len(boxes):,} cells; index built in {time.perf_counter() - started:.1f} s")

    rng = np.random.default_rng(7)
    which = rng.integers(0, len(boxes), args.points)
    b = boxes[which]
    lng = b[:, 0] + rng.random(args.points) * (b[:, 2] - b[:, 0])
    lat = b[:, 1] + rng.random(args.points) * (b[:, 3] - b[:, 1])
    out = rng.random(args.points) < 0.05
    lng[out] -= 5.0  # far west of the city

    t = time.perf_counter()
    got = index.positions(lng, lat)
    fast = time.perf_counter() - t

    # baseline 1: numpy bbox filter, chunked (what a hand-rolled lookup on rectangles would do)
    order = np.argsort(boxes[:, 0])
    sorted_min = boxes[order, 0]
    t = time.perf_counter()
    naive = np.full(args.points, -1, dtype=np.int64)
    width = float((boxes[:, 2] - boxes[:, 0]).max())
    for k in range(args.points):
        lo = np.searchsorted(sorted_min, lng[k] - width)
        hi = np.searchsorted(sorted_min, lng[k], side="right")
        cand = order[lo:hi]
        c = boxes[cand]
        hit = cand[
            (c[:, 0] <= lng[k]) & (lng[k] <= c[:, 2]) & (c[:, 1] <= lat[k]) & (lat[k] <= c[:, 3])
        ]
        if hit.size:
            naive[k] = hit.min()
        if k + 1 == args.sample:
            break
    bbox_seconds = time.perf_counter() - t
    n_bbox = min(args.points, args.sample)

    # baseline 2: the same STRtree, one point at a time
    t = time.perf_counter()
    loop = np.full(n_bbox, -1, dtype=np.int64)
    for k in range(n_bbox):
        hits = index.tree.query(shapely.Point(lng[k], lat[k]), predicate="intersects")
        if hits.size:
            loop[k] = hits.min()
    loop_seconds = time.perf_counter() - t

    inside = got >= 0
    assert (got[:n_bbox] == naive[:n_bbox]).all(), "vectorised and bbox answers differ"
    assert (got[:n_bbox] == loop).all(), "vectorised and per-point answers differ"
    assert (~inside == out).all(), "a point was placed wrongly inside or outside"

    rate = args.points / fast
    bbox_rate = n_bbox / bbox_seconds
    loop_rate = n_bbox / loop_seconds
    print(
        f"vectorised STRtree: {args.points:,} points in {fast:.2f} s = {rate:,.0f} points/s "
        f"({inside.sum():,} inside, {(~inside).sum():,} outside)"
    )
    print(f"baseline numpy bbox per point: {bbox_rate:,.0f} points/s (on {n_bbox:,})")
    print(f"baseline STRtree per point:    {loop_rate:,.0f} points/s (on {n_bbox:,})")
    print(
        f"ratio: {rate / bbox_rate:.0f}x the bbox loop, {rate / loop_rate:.0f}x the per-point "
        f"STRtree; target {TARGET:,}/s: {'met' if rate >= TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

"""The city's map: districts (区) → streets (街道/镇) → communities (社区/村) → grid cells (网格).

Each district is a square around its real centre, sized from its real area but shrunk until no two
districts overlap; every level below is a rectangular tiling of its parent, so cells never overlap
and exactly cover their community. Codes extend the district's GB/T 2260 code: streets 9 digits
(街道 001-, 镇 100-), communities 12 digits (社区 001-, 村 200-), cells 15 digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from haihe.synth import reference
from haihe.synth.arrays import Floats, Ints, split_counts, stream

FULL_PERSONS = 13_600_000
FULL_STREETS = 250
FULL_COMMUNITIES = 5_200
FULL_CELLS = 22_000
MIN_STREETS, MIN_COMMUNITIES, MIN_CELLS = 3, 3, 2
LAT0 = 39.1
KM_PER_LNG = 111.32 * math.cos(math.radians(LAT0))
KM_PER_LAT = 110.95
DIRECTIONS = (("", ""), ("东", "Dong"), ("西", "Xi"), ("南", "Nan"), ("北", "Bei"), ("新", "Xin"))


@dataclass
class Level:
    """One level of the map: codes, parents, names and bounding boxes (lng/lat, WGS 84)."""

    codes: list[str]
    parent: Ints
    name_zh: list[str]
    name_en: list[str]
    kind: list[str]
    bbox: Floats  # (rows, 4): min_lng, min_lat, max_lng, max_lat
    weight: Floats = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def centre(self) -> tuple[Floats, Floats]:
        """Return (lat, lng) of each box's centre."""
        return (self.bbox[:, 1] + self.bbox[:, 3]) / 2, (self.bbox[:, 0] + self.bbox[:, 2]) / 2


@dataclass
class CityMap:
    """The whole map; ``communities.weight`` is each community's share of the population."""

    districts: Level
    streets: Level
    communities: Level
    cells: Level
    district_centres: Floats  # (16, 2): lat, lng as published

    def community_district(self) -> Ints:
        """Return the district index of every community."""
        return self.streets.parent[self.communities.parent]


def level_counts(persons: int) -> tuple[int, int, int]:
    """Return the numbers of streets, communities and cells for a city of ``persons``."""
    scale = min(1.0, persons / FULL_PERSONS)
    n_districts = len(reference.rows("districts"))
    streets = max(MIN_STREETS * n_districts, round(FULL_STREETS * scale))
    communities = max(MIN_COMMUNITIES * streets, round(FULL_COMMUNITIES * scale))
    cells = max(MIN_CELLS * communities, round(FULL_CELLS * scale))
    return streets, communities, cells


def _district_squares(lat: Floats, lng: Floats, area: Floats) -> Floats:
    """Return non-overlapping square boxes around each centre, each as large as its area allows."""
    x, y = lng * KM_PER_LNG, lat * KM_PER_LAT
    cheb = np.maximum(np.abs(x[:, None] - x[None, :]), np.abs(y[:, None] - y[None, :]))
    np.fill_diagonal(cheb, np.inf)
    target = np.sqrt(area) / 2
    half = np.zeros_like(target)
    frozen = np.zeros(target.size, np.bool_)
    for _ in range(400):  # grow together; a square stops when it would touch a neighbour
        trial = np.where(frozen, half, np.minimum(target, half + target / 200))
        clash = ((trial[:, None] + trial[None, :]) > cheb).any(axis=1)
        frozen |= clash | (trial >= target)
        half = np.where(clash, half, trial)
        if frozen.all():
            break
    hx, hy = half / KM_PER_LNG, half / KM_PER_LAT
    return np.column_stack([lng - hx, lat - hy, lng + hx, lat + hy])


def tile(box: Floats, parts: int, rng: np.random.Generator) -> Floats:
    """Return ``parts`` boxes that exactly tile ``box`` in rows, north-west first."""
    min_x, min_y, max_x, max_y = (float(v) for v in box)
    width, height = (max_x - min_x) * KM_PER_LNG, (max_y - min_y) * KM_PER_LAT
    n_rows = int(np.clip(round(math.sqrt(parts * height / max(width, 1e-9))), 1, parts))
    per_row = split_counts(parts, np.ones(n_rows))
    row_share = per_row * rng.uniform(0.8, 1.2, n_rows)
    row_edges = max_y - np.concatenate([[0], np.cumsum(row_share)]) / row_share.sum() * (
        max_y - min_y
    )
    row_edges[-1] = min_y
    out = np.empty((parts, 4))
    at = 0
    for r, k in enumerate(per_row):
        share = rng.uniform(0.7, 1.3, int(k))
        col_edges = min_x + np.concatenate([[0], np.cumsum(share)]) / share.sum() * (max_x - min_x)
        col_edges[-1] = max_x
        for c in range(int(k)):
            out[at] = (col_edges[c], row_edges[r + 1], col_edges[c + 1], row_edges[r])
            at += 1
    return out


def _street_names(
    rng: np.random.Generator, n: int, towns: npt.NDArray[np.bool_]
) -> tuple[list[str], list[str]]:
    parts = reference.rows("place_parts")
    order = rng.permutation(len(parts))
    zh, en = [], []
    for i in range(n):
        part = parts[int(order[i % len(parts)])]
        dz, de = DIRECTIONS[min(i // len(parts), len(DIRECTIONS) - 1)]
        town = bool(towns[i])
        zh.append(part["zh"] + dz + ("镇" if town else "街道"))
        en.append(f"{part['pinyin']}{(' ' + de) if de else ''} {'Town' if town else 'Subdistrict'}")
    return zh, en


def _community_names(
    rng: np.random.Generator, villages: npt.NDArray[np.bool_]
) -> tuple[list[str], list[str]]:
    """Return names for one street's communities, distinct within the street."""
    parts = reference.rows("place_parts")
    zh, en = [], []
    chosen: set[str] = set()
    for village in villages:
        kind = "village" if village else "community"
        suffixes = reference.where("name_suffixes", "kind", kind)
        while True:
            part = parts[int(rng.integers(len(parts)))]
            suffix = suffixes[int(rng.integers(len(suffixes)))]
            stem = part["zh"] if part["zh"].endswith(suffix["zh"]) else part["zh"] + suffix["zh"]
            if stem not in chosen:
                break
        chosen.add(stem)
        if part["zh"].endswith(suffix["zh"]):
            stem_en = part["pinyin"]
        elif suffix["pinyin"][0].isupper():
            stem_en = f"{part['pinyin']} {suffix['pinyin']}"
        else:
            stem_en = part["pinyin"] + suffix["pinyin"]
        zh.append(stem + ("村" if village else "社区"))
        en.append(stem_en + (" Village" if village else " Community"))
    return zh, en


def build_map(seed: int, persons: int) -> CityMap:
    """Return the map for a city of ``persons``: counts scale with size, never below a few."""
    rng = stream(seed, "geo")
    drows = reference.rows("districts")
    lat, lng = reference.numbers("districts", "lat"), reference.numbers("districts", "lng")
    pop = reference.numbers("districts", "population_10k")
    urban = reference.numbers("districts", "urban").astype(bool)
    n_streets, n_communities, n_cells = level_counts(persons)
    dbox = _district_squares(lat, lng, reference.numbers("districts", "area_km2"))
    districts = Level(
        codes=[r["region_code"] for r in drows],
        parent=np.full(len(drows), -1, np.int64),
        name_zh=[r["name_zh"] for r in drows],
        name_en=[r["name_en"] for r in drows],
        kind=["区"] * len(drows),
        bbox=dbox,
        weight=pop / pop.sum(),
    )

    per_district = split_counts(n_streets, pop, MIN_STREETS)
    s_parent = np.repeat(np.arange(len(drows)), per_district)
    rank = np.arange(n_streets) - np.repeat(np.cumsum(per_district) - per_district, per_district)
    towns = ~urban[s_parent] & (rank >= np.ceil(per_district[s_parent] * 0.35))
    s_zh, s_en = _street_names(rng, n_streets, towns)
    s_codes, s_boxes = [], []
    for d in range(len(drows)):
        k = int(per_district[d])
        s_boxes.append(tile(dbox[d], k, rng))
        seq_street, seq_town = 1, 100
        for i in np.flatnonzero(s_parent == d):
            seq = seq_town if towns[i] else seq_street
            s_codes.append(f"{districts.codes[d]}{seq:03d}")
            seq_town, seq_street = seq_town + bool(towns[i]), seq_street + (not towns[i])
    s_weight = pop[s_parent] / per_district[s_parent] * rng.lognormal(0, 0.3, n_streets)
    streets = Level(
        s_codes, s_parent, s_zh, s_en, ["镇" if t else "街道" for t in towns], np.vstack(s_boxes)
    )
    streets.weight = s_weight / s_weight.sum()

    per_street = split_counts(n_communities, streets.weight, MIN_COMMUNITIES)
    c_parent = np.repeat(np.arange(n_streets), per_street)
    village = towns[c_parent] & (rng.random(n_communities) < 0.7)
    c_codes: list[str] = []
    c_zh: list[str] = []
    c_en: list[str] = []
    c_boxes = []
    for s in range(n_streets):
        members = np.flatnonzero(c_parent == s)
        c_boxes.append(tile(streets.bbox[s], members.size, rng))
        zh, en = _community_names(rng, village[members])
        c_zh += zh
        c_en += en
        seq_c, seq_v = 1, 200
        for i in members:
            c_codes.append(f"{s_codes[s]}{(seq_v if village[i] else seq_c):03d}")
            seq_v, seq_c = seq_v + bool(village[i]), seq_c + (not village[i])
    c_weight = streets.weight[c_parent] / per_street[c_parent]
    c_weight = c_weight * rng.lognormal(0, 0.35, n_communities) * np.where(village, 0.5, 1.0)
    communities = Level(
        c_codes, c_parent, c_zh, c_en, ["村" if v else "社区" for v in village], np.vstack(c_boxes)
    )
    communities.weight = c_weight / c_weight.sum()

    per_community = split_counts(n_cells, communities.weight, MIN_CELLS)
    g_parent = np.repeat(np.arange(n_communities), per_community)
    g_boxes = [tile(communities.bbox[c], int(per_community[c]), rng) for c in range(n_communities)]
    g_seq = np.arange(n_cells) - np.repeat(np.cumsum(per_community) - per_community, per_community)
    cells = Level(
        codes=[f"{c_codes[p]}{q + 1:03d}" for p, q in zip(g_parent, g_seq, strict=True)],
        parent=g_parent,
        name_zh=[f"{c_zh[p]}第{q + 1}网格" for p, q in zip(g_parent, g_seq, strict=True)],
        name_en=[f"{c_en[p]} Grid {q + 1}" for p, q in zip(g_parent, g_seq, strict=True)],
        kind=["网格"] * n_cells,
        bbox=np.vstack(g_boxes),
    )
    return CityMap(districts, streets, communities, cells, np.column_stack([lat, lng]))


def random_points(rng: np.random.Generator, boxes: Floats, which: Ints) -> tuple[Floats, Floats]:
    """Return (lat, lng) of one uniform random point inside ``boxes[which[i]]`` per row."""
    b = boxes[which]
    u, v = rng.random(which.size), rng.random(which.size)
    return b[:, 1] + v * (b[:, 3] - b[:, 1]), b[:, 0] + u * (b[:, 2] - b[:, 0])


def box_area_km2(boxes: Floats) -> Floats:
    """Return the area of each lng/lat box in square kilometres (local flat approximation)."""
    mid = np.radians((boxes[:, 1] + boxes[:, 3]) / 2)
    width = (boxes[:, 2] - boxes[:, 0]) * 111.32 * np.cos(mid)
    return width * (boxes[:, 3] - boxes[:, 1]) * KM_PER_LAT

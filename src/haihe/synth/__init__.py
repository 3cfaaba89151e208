"""Synthetic city — 合成城市: a Tianjin-like city with ground truth for the demo, tests, benchmarks.

``generate_city(out, persons=N, seed=S, as_of=D)`` writes the city's map, members, departmental
datasets (Parquet), GeoJSON grids and ground truth under ``out`` and returns its ``CityManifest``
(also written to ``out/manifest.json``). See ``haihe.synth.service`` for the layout.
"""

from haihe.synth.schemas import CityManifest, ColumnInfo, DatasetInfo, GeoInfo, TruthInfo
from haihe.synth.service import (
    DEFAULT_AS_OF,
    DEFAULT_PERSONS,
    DEFAULT_SEED,
    generate_city,
    load_manifest,
)

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_PERSONS",
    "DEFAULT_SEED",
    "CityManifest",
    "ColumnInfo",
    "DatasetInfo",
    "GeoInfo",
    "TruthInfo",
    "generate_city",
    "load_manifest",
]

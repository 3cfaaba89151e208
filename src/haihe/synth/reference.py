"""Static reference lists shipped in ``haihe/synth/data``: districts, departments, names, places.

Each CSV is read once and cached. The lists are facts or plausible stand-ins (see each file's
header); nothing here is random.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

CATEGORY_ZH = {
    "government": "政府组成部门",
    "special": "直属特设机构",
    "affiliated": "直属机构",
    "institution": "事业单位",
    "central": "中央驻津单位",
    "judicial": "司法机关",
    "mass": "群团组织",
    "party": "党委部门",
}
CITY_REGION_CODE = "120000"
CITY_NAME_ZH = "天津市"


def _text(name: str) -> str:
    return resources.files("haihe.synth").joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    """Return the rows of ``data/<name>.csv`` as dicts of strings, in file order."""
    return tuple(csv.DictReader(io.StringIO(_text(f"{name}.csv"))))


def column(name: str, col: str) -> list[str]:
    """Return one column of ``data/<name>.csv`` as strings."""
    return [row[col] for row in rows(name)]


def numbers(name: str, col: str) -> npt.NDArray[np.float64]:
    """Return one numeric column of ``data/<name>.csv`` as float64."""
    return np.array([float(row[col]) for row in rows(name)], np.float64)


def where(name: str, col: str, value: str) -> tuple[dict[str, str], ...]:
    """Return the rows of ``data/<name>.csv`` whose ``col`` equals ``value``."""
    return tuple(row for row in rows(name) if row[col] == value)


@functools.cache
def dataset_specs() -> dict[str, dict[str, Any]]:
    """Return the dataset descriptions of ``data/datasets.json`` keyed by dataset id."""
    specs: list[dict[str, Any]] = json.loads(_text("datasets.json"))
    return {spec["id"]: spec for spec in specs}


@functools.cache
def column_specs() -> dict[str, tuple[dict[str, str], ...]]:
    """Return the column descriptions of ``data/columns.csv`` grouped by dataset id, in order."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows("columns"):
        grouped.setdefault(row["dataset"], []).append(row)
    return {key: tuple(value) for key, value in grouped.items()}

"""The manifest of a synthetic city — ``DIR/manifest.json`` as pydantic models.

The catalogue registers every ``DatasetInfo`` as a resource (信息资源) of its provider department;
``truth`` lists the ground-truth files tests score against; ``geo`` lists the GeoJSON layers.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from haihe.core.errors import NotFound

FORMAT: Literal["haihe-synth/1"] = "haihe-synth/1"

BaseLibrary = Literal["人口", "法人单位", "自然资源和空间地理", "社会信用", "电子证照"]
Sensitivity = Literal["L1", "L2", "L3", "L4"]
ColumnKind = Literal["id_number", "name", "phone", "address", "uscc", "plate", "generic"]
UpdateCycle = Literal["realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular"]
ShareType = Literal["unconditional", "conditional", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnInfo(_Model):
    """One column — 数据项: its type, key flag, sensitivity level and masking kind."""

    name: str
    name_zh: str
    type: str
    is_key: bool
    nullable: bool
    sensitivity: Sensitivity
    personal: bool
    kind: ColumnKind


class DatasetInfo(_Model):
    """One departmental dataset — 信息资源, provided by the department ``provider``.

    ``base_library`` is one of the five base libraries (基础库); None marks thematic data (主题库)
    such as activity records. ``share_type``/``open_type``: 无条件 / 有条件 / 不予 sharing and
    opening suggested for the catalogue.
    """

    id: str
    path: str
    provider: str
    name_zh: str
    name_en: str
    summary_zh: str
    summary_en: str
    base_library: BaseLibrary | None
    topic: str
    update_cycle: UpdateCycle
    share_type: ShareType
    open_type: ShareType
    rows: int
    bytes: int
    sha256: str
    columns: list[ColumnInfo]


class TruthColumn(_Model):
    """One column of a ground-truth file."""

    name: str
    type: str


class TruthInfo(_Model):
    """A ground-truth file: what really happened, for scoring results (never a resource)."""

    id: str
    path: str
    summary_en: str
    rows: int
    bytes: int
    sha256: str
    columns: list[TruthColumn]


class GeoInfo(_Model):
    """A GeoJSON FeatureCollection (WGS 84) of one map level."""

    level: Literal["districts", "streets", "communities", "cells"]
    path: str
    features: int
    bytes: int
    sha256: str


class CityCounts(_Model):
    """Headline figures of the city."""

    persons: int
    alive: int
    households: int
    districts: int
    streets: int
    communities: int
    cells: int
    departments: int
    institutions: int
    pensioners: int
    enterprises: int


class CityManifest(_Model):
    """``manifest.json``: everything written for one (persons, seed, as_of)."""

    format: Literal["haihe-synth/1"] = FORMAT
    persons: int
    seed: int
    as_of: date
    counts: CityCounts
    total_rows: int
    datasets: list[DatasetInfo]
    truth: list[TruthInfo]
    geo: list[GeoInfo]

    def dataset(self, dataset_id: str) -> DatasetInfo:
        """Return the dataset ``dataset_id`` (e.g. ``"GA.household_registration"``)."""
        for info in self.datasets:
            if info.id == dataset_id:
                return info
        raise NotFound(f"dataset {dataset_id!r} is not in this synthetic city")

    def truth_file(self, truth_id: str) -> TruthInfo:
        """Return the ground-truth file ``truth_id`` (e.g. ``"persons"``)."""
        for info in self.truth:
            if info.id == truth_id:
                return info
        raise NotFound(f"truth file {truth_id!r} is not in this synthetic city")

"""What every generator step shares: the seed, the date, the map, the people, the writer.

``Facts`` holds the per-person truths that one step decides and later steps read (who has a death
certificate, who holds a bus card, who is enrolled…); ``truth.py`` turns them into ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from haihe.synth.arrays import Bools, Ints, categorical, int_strings, join, pick, stream, vocab
from haihe.synth.dirt import DirtLog
from haihe.synth.geo import CityMap
from haihe.synth.people import Population
from haihe.synth.reference import column_specs
from haihe.synth.writer import CityWriter

SEXES = ("男", "女")
ACTIVITY_DAYS = 365  # activity sources cover the year before as_of

# hukou status codes (户口状态)
NO_HUKOU, ACTIVE, MOVED_OUT, CANCELLED = 0, 1, 2, 3
HUKOU_STATUS = ("无本市户籍", "正常", "迁出", "死亡注销")


def _empty_bools() -> Bools:
    return np.zeros(0, np.bool_)


def _empty_ints() -> Ints:
    return np.zeros(0, np.int64)


@dataclass
class Facts:
    """Per-person truths decided by one step and read by later ones (arrays of len(population))."""

    in_certificates: Bools = field(default_factory=_empty_bools)
    in_cremations: Bools = field(default_factory=_empty_bools)
    hukou_status: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))
    hukou_status_date: Ints = field(default_factory=_empty_ints)
    employer: Ints = field(default_factory=_empty_ints)  # enterprise row, -1 none
    public_employer: Ints = field(default_factory=_empty_ints)  # department row, -1 none
    disabled: Bools = field(default_factory=_empty_bools)
    low_income: Bools = field(default_factory=_empty_bools)  # member of an active 低保 household
    low_income_listed: Bools = field(default_factory=_empty_bools)  # on the roster at all
    pensioner: Bools = field(default_factory=_empty_bools)
    pension_insured: Bools = field(default_factory=_empty_bools)
    medical_insured: Bools = field(default_factory=_empty_bools)
    bus_card: Ints = field(default_factory=_empty_ints)  # card row, -1 none
    bus_card_fraud: Bools = field(default_factory=_empty_bools)  # card still used after death
    housing_fund: Ints = field(default_factory=_empty_ints)  # account row, -1 none


@dataclass
class Context:
    """The state of one ``generate_city`` run."""

    seed: int
    as_of: date
    city: CityMap
    pop: Population
    writer: CityWriter
    log: DirtLog
    facts: Facts = field(default_factory=Facts)
    enterprise_uscc: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    enterprise_name: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    department_uscc: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    _cache: dict[str, pa.Array] = field(default_factory=dict)

    @property
    def today(self) -> int:
        """Return ``as_of`` as days since 1970-01-01."""
        return self.pop.as_of

    def rng(self, name: str) -> np.random.Generator:
        """Return the random stream of step ``name``."""
        return stream(self.seed, name)

    def emit(self, dataset_id: str, columns: dict[str, pa.Array]) -> None:
        """Write ``columns`` as dataset ``dataset_id`` (column order comes from its spec)."""
        order = [spec["column"] for spec in column_specs()[dataset_id]]
        missing = set(order) ^ set(columns)
        if missing:
            raise ValueError(f"{dataset_id}: columns differ from spec: {sorted(missing)}")
        self.writer.dataset(dataset_id, pa.table({name: columns[name] for name in order}))

    # --- columns shared by many datasets ---------------------------------------------------------

    def sex_column(self, persons: Ints) -> pa.Array:
        """Return 男/女 for ``persons``."""
        return categorical(self.pop.sex[persons] - 1, SEXES)

    def district_of(self, persons: Ints) -> Ints:
        """Return the district row of each person's community."""
        return self.city.community_district()[self.pop.community[persons]]

    def code_column(self, level: str, rows: Ints) -> pa.Array:
        """Return the codes of map ``level`` ('districts', 'streets', 'communities') at ``rows``."""
        return categorical(rows, self._codes(level))

    def _codes(self, level: str) -> pa.Array:
        if level not in self._cache:
            self._cache[level] = vocab(getattr(self.city, level).codes)
        return self._cache[level]

    def household_addresses(self) -> pa.Array:
        """Return one address per household, e.g. 天津市河西区友谊路街道春华里社区3号楼2门401."""
        if "addresses" not in self._cache:
            self._cache["addresses"] = self._household_addresses()
        return self._cache["addresses"]

    def _household_addresses(self) -> pa.Array:
        rng = self.rng("addresses")
        first = np.flatnonzero(np.r_[True, np.diff(self.pop.household) != 0])
        community = self.pop.community[first]
        street = self.city.communities.parent[community]
        district = self.city.streets.parent[street]
        h = first.size
        village = np.array([k == "村" for k in self.city.communities.kind])[community]
        building = int_strings(rng.integers(1, 40, h))
        unit = int_strings(rng.integers(1, 7, h))
        room = int_strings(rng.integers(1, 25, h) * 100 + rng.integers(1, 5, h))
        place = join(
            "天津市",
            pick(vocab(self.city.districts.name_zh), district),
            pick(vocab(self.city.streets.name_zh), street),
            pick(vocab(self.city.communities.name_zh), community),
        )
        flat = join(place, building, "号楼", unit, "门", room)
        house = join(place, int_strings(rng.integers(1, 300, h)), "号")
        return pc.if_else(pa.array(village), house, flat)

    def addresses(self, persons: Ints) -> pa.Array:
        """Return the household address of each of ``persons``."""
        return pick(self.household_addresses(), self.pop.household[persons])


def active_span(ctx: Context, persons: Ints, days: int = ACTIVITY_DAYS) -> tuple[Ints, Ints]:
    """Return [start, end) day numbers of each person's window: ends at death or ``as_of``."""
    start = np.full(persons.size, ctx.today - days, np.int64)
    end = np.where(ctx.pop.dead[persons], ctx.pop.death[persons], ctx.today)
    return start, np.maximum(end, start)

"""A small synthetic city, generated once per test session and shared read-only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from synth_city import AS_OF, PERSONS, SEED

from haihe.synth import CityManifest, generate_city


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CityManifest]:
    """The directory and manifest of a city of 8,000 persons (do not modify it)."""
    out = tmp_path_factory.mktemp("synth-city")
    return out, generate_city(out, persons=PERSONS, seed=SEED, as_of=AS_OF)


@pytest.fixture(scope="session")
def city_dir(city: tuple[Path, CityManifest]) -> Path:
    """The directory of the shared city."""
    return city[0]


@pytest.fixture(scope="session")
def manifest(city: tuple[Path, CityManifest]) -> CityManifest:
    """The manifest of the shared city."""
    return city[1]


@pytest.fixture(scope="session")
def sql(city_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per dataset (GA_household_registration, …) and truth
    file (truth_persons, …)."""
    con = duckdb.connect()
    for path in sorted((city_dir / "datasets").glob("*/*.parquet")):
        con.execute(f"CREATE VIEW {path.parent.name}_{path.stem} AS SELECT * FROM '{path}'")
    for path in sorted((city_dir / "truth").glob("*.parquet")):
        con.execute(f"CREATE VIEW truth_{path.stem} AS SELECT * FROM '{path}'")
    for path in sorted((city_dir / "city").glob("*.parquet")):
        con.execute(f"CREATE VIEW city_{path.stem} AS SELECT * FROM '{path}'")
    con.execute(f"CREATE VIEW grid_cells AS SELECT * FROM '{city_dir / 'grids' / 'cells.parquet'}'")
    return con

"""``generate_city``: build the synthetic city and write it under one directory.

Layout of ``out`` (all Parquet is zstd-compressed; all GeoJSON is WGS 84)::

    manifest.json                      CityManifest: every file, its rows, columns and checksum
    city/districts.parquet             MZ.districts      the 16 districts (GB/T 2260 codes)
    city/streets.parquet               MZ.streets        街道/镇, 9-digit codes
    city/communities.parquet           MZ.communities    社区/村, 12-digit codes
    city/departments.parquet           BB.departments    the 68 municipal departments
    city/institutions.parquet          DSJ.institutions  the 5 public-service institutions
    grids/{districts,streets,communities,cells}.geojson   polygons, cells tile communities
    grids/cells.parquet                ZFW.grid_cells    cells with bounding box and WKT
    datasets/<DEPT>/<name>.parquet     departmental datasets (see data/datasets.json)
    truth/*.parquet                    ground truth: persons, households, pensions, bus_cards,
                                       trips, housing_fund_applications, dirty_rows

The same (persons, seed, as_of) always gives byte-identical files. ``manifest.json`` is written
last, so a directory without it is an interrupted run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

from haihe.core.errors import InvalidInput, StorageError
from haihe.synth import (
    activity,
    benefits,
    city,
    economy,
    environment,
    insurance,
    reference,
    registry,
    truth,
    utilities,
    vehicles,
    welfare,
)
from haihe.synth.context import Context
from haihe.synth.dirt import DirtLog
from haihe.synth.geo import build_map
from haihe.synth.people import build_population
from haihe.synth.schemas import CityCounts, CityManifest
from haihe.synth.writer import CityWriter

Progress = Callable[[str, int, int], None]
DEFAULT_PERSONS = 100_000
DEFAULT_SEED = 20261121
DEFAULT_AS_OF = date(2026, 11, 1)
MIN_PERSONS = 200
MAX_PERSONS = 50_000_000
OUTPUTS = ("manifest.json", "city", "grids", "datasets", "truth")

Step = Callable[[Context], None]
STEPS: tuple[tuple[str, Step], ...] = (
    ("city and map", city.write_city),
    ("death certificates and cremations", registry.write_deaths),
    ("household registration", registry.write_household_registration),
    ("residence permits", registry.write_residence_permits),
    ("enterprises and employment", economy.write_enterprises),
    ("disability certificates", welfare.write_disability),
    ("minimum living security", welfare.write_minimum_living_security),
    ("pension recipients", welfare.write_pensions),
    ("pension insurance", insurance.write_pension_insurance),
    ("medical insurance", insurance.write_medical_insurance),
    ("elderly bus cards", benefits.write_bus_cards),
    ("housing provident fund", benefits.write_housing_fund),
    ("vehicles and ride-hailing", vehicles.write_vehicles_and_ride_hailing),
    ("medical visits", activity.write_medical_visits),
    ("health check-ups", activity.write_health_checkups),
    ("transit taps", activity.write_transit_taps),
    ("utility payments", utilities.write_utilities),
    ("mobile subscriptions", utilities.write_mobile),
    ("air quality", environment.write_air_quality),
    ("ground truth", truth.write_truth),
)


def check_request(*, persons: int, seed: int, as_of: date) -> None:
    """Raise InvalidInput unless (persons, seed, as_of) can make a city."""
    if not MIN_PERSONS <= persons <= MAX_PERSONS:
        raise InvalidInput(
            f"persons must be between {MIN_PERSONS:,} and {MAX_PERSONS:,}, not {persons:,}"
        )
    if not date(2000, 1, 1) <= as_of <= date(2099, 12, 31):
        raise InvalidInput(f"as-of date {as_of.isoformat()} must lie in 2000-2099")
    if not 0 <= seed < 2**63:
        raise InvalidInput(f"seed must be between 0 and 2**63 - 1, not {seed}")


def prepare_output(out: Path, *, overwrite: bool) -> None:
    """Make ``out`` ready to receive a city, or raise InvalidInput / StorageError."""
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidInput(
                f"output directory {out} is not empty; choose another or pass --force to replace "
                "a previous city there"
            )
        for name in OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".haihe-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"cannot write to {out}: {exc.strerror or exc}") from exc


def generate_city(
    out: Path,
    *,
    persons: int,
    seed: int,
    as_of: date,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> CityManifest:
    """Generate a city of ``persons`` people under ``out`` and return its manifest.

    ``progress(step, done, total)`` is called before and after every step. Raises InvalidInput
    for a bad size, date or a non-empty ``out`` (unless ``overwrite``), StorageError when ``out``
    cannot be written.
    """
    check_request(persons=persons, seed=seed, as_of=as_of)
    prepare_output(out, overwrite=overwrite)
    total = len(STEPS) + 3
    report = progress or (lambda step, done, total: None)
    report("map", 0, total)
    city_map = build_map(seed, persons)
    report("people", 1, total)
    population = build_population(seed, persons, as_of, city_map)
    writer = CityWriter(out)
    ctx = Context(seed, as_of, city_map, population, writer, DirtLog())
    try:
        for done, (name, step) in enumerate(STEPS, start=2):
            report(name, done, total)
            step(ctx)
        report("finishing writes", total - 1, total)
    finally:
        datasets, truth_files, geo = writer.close()
    manifest = CityManifest(
        persons=persons,
        seed=seed,
        as_of=as_of,
        counts=CityCounts(
            persons=persons,
            alive=int(population.alive.sum()),
            households=int(population.household[-1]) + 1,
            districts=len(city_map.districts),
            streets=len(city_map.streets),
            communities=len(city_map.communities),
            cells=len(city_map.cells),
            departments=len(reference.rows("departments")),
            institutions=len(reference.rows("institutions")),
            pensioners=int(ctx.facts.pensioner.sum()),
            enterprises=len(ctx.enterprise_uscc),
        ),
        total_rows=sum(d.rows for d in datasets),
        datasets=datasets,
        truth=truth_files,
        geo=geo,
    )
    (out / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    report("done", total, total)
    return manifest


def load_manifest(out: Path) -> CityManifest:
    """Return the manifest of the city under ``out``, or raise StorageError."""
    path = out / "manifest.json"
    try:
        return CityManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StorageError(f"no synthetic city at {out}: cannot read {path.name}") from exc

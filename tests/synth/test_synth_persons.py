"""The synthetic population: valid IDs that match the person, a realistic pyramid, names, homes."""

from __future__ import annotations

import re
from datetime import date

import pyarrow.parquet as pq
import pytest
from synth_city import AS_OF, PERSONS

from haihe.core.identity import compose_ids_np, normalise_id, parse_id
from haihe.synth import reference
from haihe.synth.geo import build_map
from haihe.synth.people import build_population

TIANJIN = re.compile(r"^12")


def test_every_clean_id_is_valid_and_matches_birth_date_and_sex(city_dir):
    persons = pq.read_table(city_dir / "truth" / "persons.parquet").to_pylist()
    assert len(persons) == PERSONS
    for person in persons:
        parsed = parse_id(person["id_number"], today=AS_OF)
        assert normalise_id(person["id_number"], today=AS_OF) == person["id_number"]
        assert parsed.birth_date == person["birth_date"]
        assert parsed.sex == ("M" if person["sex"] == "男" else "F")
        assert int(person["id_number"][:17]) == person["id_body"]


def test_ids_agree_with_the_identity_kit(sql):
    rows = sql.execute("SELECT id_body, id_number FROM truth_persons ORDER BY person_id").fetchall()
    bodies = [b for b, _ in rows]
    assert compose_ids_np(bodies).tolist() == [n for _, n in rows]


def test_ids_and_person_ids_are_unique(sql):
    n, ids, pids = sql.execute(
        "SELECT count(*), count(DISTINCT id_number), count(DISTINCT person_id) FROM truth_persons"
    ).fetchone()
    assert n == ids == pids == PERSONS


def test_id_regions_are_mostly_tianjin_some_from_other_provinces(sql):
    codes = [r[0] for r in sql.execute("SELECT left(id_number, 6) FROM truth_persons").fetchall()]
    tianjin = sum(bool(TIANJIN.match(c)) for c in codes) / len(codes)
    assert 0.7 <= tianjin <= 0.92
    # Old county codes (e.g. 120225 蓟县) appear for people born before the district was formed.
    legacy = {row["legacy_code"] for row in reference.rows("legacy_codes")}
    assert legacy & set(codes)


def test_age_pyramid_and_sex_ratio_are_tianjin_like(sql):
    over_60, over_65, children, male = sql.execute(
        "SELECT avg((age >= 60)::INT), avg((age >= 65)::INT), avg((age < 15)::INT), "
        "avg((sex = '男')::INT) FROM truth_persons WHERE alive"
    ).fetchone()
    assert 0.19 <= over_60 <= 0.26
    assert 0.12 <= over_65 <= 0.18
    assert 0.09 <= children <= 0.17
    assert 0.46 <= male <= 0.54


def test_population_at_scale_keeps_the_pyramid():
    city = build_map(11, 200_000)
    pop = build_population(11, 200_000, AS_OF, city)
    alive = pop.alive
    share_60 = (pop.age[alive] >= 60).mean()
    assert 0.21 <= share_60 <= 0.24
    assert 0.02 <= pop.dead.mean() <= 0.06  # deaths over five years
    assert 0.8 <= pop.hukou.mean() <= 0.9


def test_names_are_chinese_from_the_surname_list(sql):
    surnames = reference.column("surnames", "surname")
    names = [r[0] for r in sql.execute("SELECT name FROM truth_persons").fetchall()]
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n) for n in names)
    assert all(any(n.startswith(s) for s in surnames) for n in names)
    top = sql.execute(
        "SELECT left(name, 1) AS s, count(*) FROM truth_persons GROUP BY s ORDER BY 2 DESC LIMIT 4"
    ).fetchall()
    assert {s for s, _ in top} <= {"王", "李", "张", "刘", "陈", "杨"}


def test_households_share_a_community_and_have_one_head(sql):
    spread, heads = sql.execute(
        "SELECT max(c), min(h) FROM (SELECT household_id, count(DISTINCT community_code) c, "
        "count(*) FILTER (relation = '户主') h FROM truth_persons GROUP BY household_id)"
    ).fetchone()
    assert spread == 1
    assert heads == 1
    size = sql.execute("SELECT avg(members) FROM truth_households").fetchone()[0]
    assert 2.2 <= size <= 2.9


def test_phones_are_eleven_digits_and_children_have_none(sql):
    bad = sql.execute(
        "SELECT count(*) FROM truth_persons WHERE phone IS NOT NULL "
        "AND NOT regexp_matches(phone, '^1[3-9][0-9]{9}$')"
    ).fetchone()[0]
    assert bad == 0
    young_with_phone = sql.execute(
        "SELECT count(*) FROM truth_persons WHERE age < 12 AND phone IS NOT NULL"
    ).fetchone()[0]
    assert young_with_phone == 0


def test_dead_persons_died_before_as_of_and_after_birth(sql):
    bad = sql.execute(
        "SELECT count(*) FROM truth_persons WHERE NOT alive AND "
        "(death_date IS NULL OR death_date >= ? OR death_date <= birth_date)",
        [AS_OF],
    ).fetchone()[0]
    assert bad == 0
    alive_with_date = sql.execute(
        "SELECT count(*) FROM truth_persons WHERE alive AND death_date IS NOT NULL"
    ).fetchone()[0]
    assert alive_with_date == 0


@pytest.mark.parametrize("as_of", [date(2010, 6, 30), date(2040, 1, 1)])
def test_ids_stay_valid_for_other_reference_dates(as_of):
    city = build_map(3, 2_000)
    pop = build_population(3, 2_000, as_of, city)
    for number in pop.ids(pop.person_id[::37] - 1).to_pylist():
        assert normalise_id(number, today=as_of) == number

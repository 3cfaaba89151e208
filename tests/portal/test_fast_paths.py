"""The measured fast paths give the same answers as counting by hand: package_search's count and
facets from one statement, datastore_search's totals from the row store's filter indexes."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from portal_world import DISTRICTS, dataset_in, loaded_resource, people, row
from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_resource
from haihe.catalogue.models import OpenType, UpdateCycle
from haihe.core.settings import Settings
from haihe.portal import datastore, preview, search, service
from haihe.portal.datastore import SearchIn
from haihe.portal.materialise import chart_path, rowstore_path
from haihe.portal.models import Dataset, DatasetState, DatasetTag

TOPICS = ["health", "transport", "economy", "environment", "social-assistance"]
TAGS = ["养老", "公交", "企业", "空气", "统计", "open data"]
WORDS = ["公交", "医院", "企业", "空气"]


@dataclass(frozen=True)
class Made:
    """One dataset as inserted, to count against."""

    id: int
    uuid: str
    org: str
    topic: str
    tags: tuple[str, ...]
    formats: str
    licence: str
    open_type: str
    text: str
    active: bool


def _many_datasets(session: Session, n: int) -> list[Made]:
    """``n`` datasets over four providers, varied on every facet; a tenth withdrawn."""
    orgs = [make_org(session, code=code) for code in ("MZ", "RS", "JT", "WJW")]
    resources = {o.id: make_resource(session, o) for o in orgs}
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    made = []
    for i in range(1, n + 1):
        org = rng.choice(orgs)
        topic = rng.choice(TOPICS)
        tags = tuple(rng.sample(TAGS, rng.randint(0, 3)))
        word = rng.choice(WORDS)
        formats = "CSV,JSON,Parquet" + (",XLSX" if i % 3 else "")
        ds = Dataset(
            uuid=str(uuid.UUID(int=rng.getrandbits(128))), resource_uuid=str(uuid.uuid4()),
            name=f"set-{i:04d}", title_zh=f"{word}数据{i}", title_en=None, notes_zh="",
            notes_en=None, resource_id=resources[org.id].id, org_id=org.id, topic=topic,
            open_type=OpenType.CONDITIONAL if i % 4 == 0 else OpenType.UNCONDITIONAL,
            licence_id="cc-zero" if i % 5 == 0 else "cc-by-4.0",
            update_frequency=UpdateCycle.MONTHLY, view={},
            state=DatasetState.WITHDRAWN if i % 10 == 0 else DatasetState.ACTIVE,
            formats=formats, search_text=f"set-{i:04d}\n{word}数据{i}\n" + "\n".join(tags),
            created_by="test", created_at=now, modified_at=now - dt.timedelta(minutes=i),
        )  # fmt: skip
        ds.tags = [DatasetTag(tag=t) for t in tags]
        session.add(ds)
        session.flush()
        made.append(
            Made(ds.id, ds.uuid, org.code.lower(), topic, tags, formats, ds.licence_id,
                 ds.open_type.value, ds.search_text, ds.state is DatasetState.ACTIVE)
        )  # fmt: skip
    return made


def _by_hand(matches: list[Made], limit: int) -> dict[str, list[tuple[str, int]]]:
    counts: dict[str, Counter[str]] = {
        "organization": Counter(m.org for m in matches),
        "groups": Counter(m.topic for m in matches),
        "tags": Counter(t for m in matches for t in m.tags),
        "res_format": Counter(f for m in matches for f in m.formats.split(",")),
        "license_id": Counter(m.licence for m in matches),
        "open_type": Counter(m.open_type for m in matches),
    }
    return {
        name: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        for name, c in counts.items()
    }


CASES: list[tuple[str, str, Callable[[Made], bool]]] = [
    ("*:*", "", lambda m: True),
    ("公交", "", lambda m: "公交" in m.text),
    ("", "groups:health", lambda m: m.topic == "health"),
    ("", "-groups:health tags:养老", lambda m: m.topic != "health" and "养老" in m.tags),
    (
        "企业",
        "organization:rs -res_format:XLSX",
        lambda m: "企业" in m.text and m.org == "rs" and "XLSX" not in m.formats,
    ),  # fmt: skip
    (
        "",
        'open_type:conditional tags:"open data"',
        lambda m: m.open_type == "conditional" and "open data" in m.tags,
    ),  # fmt: skip
    ("无此词", "", lambda m: False),
]


@pytest.mark.parametrize("limit", [50, 2])
def test_search_count_and_every_facet_match_counting_by_hand(session: Session, limit: int) -> None:
    made = _many_datasets(session, 160)
    for q, fq, wanted in CASES:
        matches = [m for m in made if m.active and wanted(m)]
        found = search.search(
            session, query=search.parse(q, fq), sort=search.parse_sort("id asc"), rows=1000,
            start=0, facet_fields=list(search.FACET_FIELDS), facet_limit=limit,
        )  # fmt: skip
        assert found.count == len(matches), (q, fq)
        assert found.ids == [m.id for m in sorted(matches, key=lambda m: m.uuid)], (q, fq)
        assert found.facets == _by_hand(matches, limit), (q, fq)
    assert any(len(v) > 2 for v in _by_hand(made, 1000).values())  # so the limit 2 cuts


def test_a_page_of_search_results_and_unknown_facets(session: Session) -> None:
    made = _many_datasets(session, 60)
    active = sorted((m for m in made if m.active), key=lambda m: m.uuid)
    page = search.search(
        session, query=search.parse("", ""), sort=search.parse_sort("id asc"), rows=5, start=3,
        facet_fields=["groups"], facet_limit=50,
    )  # fmt: skip
    assert page.count == len(active) == 54
    assert page.ids == [m.id for m in active[3:8]]
    past = search.search(
        session, query=search.parse("", ""), sort=search.parse_sort(None), rows=5, start=54,
        facet_fields=[], facet_limit=50,
    )  # fmt: skip
    assert (past.count, past.ids, past.facets) == (54, [], {})
    with pytest.raises(search.SearchQueryError, match="'colour' is not offered"):
        search.search(
            session, query=search.parse("", ""), sort=[], rows=1, start=0,
            facet_fields=["groups", "colour"], facet_limit=5,
        )  # fmt: skip


def _request(filters: dict[str, object], threshold: int | None, limit: int = 50) -> SearchIn:
    return SearchIn(
        filters=filters, q=None, fields=["_id", "record_no", "district", "age"], sort=None,
        limit=limit, offset=0, include_total=True, records_format="objects",
        total_estimation_threshold=threshold,
    )  # fmt: skip


def test_datastore_counts_several_indexed_filters_in_one_index(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    rows = 3000
    orgs = people(session)
    code = loaded_resource(session, settings, orgs["MZ"], tmp_path, people=rows)
    ds = service.publish(
        session, actor=ROOT, settings=settings,
        data=dataset_in(code, name="subsidies-indexed", view={
            "items": ["record_no", "district", "age", "amount"],
            "indexed": ["district", "age"],
        }),
    )  # fmt: skip
    session.commit()
    path = rowstore_path(settings, ds.uuid, ds.data_version or 0)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        indexes = {
            name: [c[2] for c in con.execute(f"PRAGMA index_info({name})")]
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if name.startswith(("ix_", "portal_"))
        }
        plan = " ".join(
            str(r[3])
            for r in con.execute(
                "EXPLAIN QUERY PLAN SELECT count(*) FROM rows WHERE district IN (?) AND age IN (?)",
                ["河西区", 70],
            )
        )
    finally:
        con.close()
    assert sorted(indexes.values()) == [["age"], ["age", "district"], ["district"],
                                        ["district", "age"]]  # fmt: skip
    assert "COVERING INDEX portal_filters_" in plan
    everything = [row(i) for i in range(rows)]
    for district, age in [("河西区", 61), ("南开区", 89), ("和平区", 62)]:
        expected = [r for r in everything if r["district"] == district and r["age"] == age]
        out = datastore.search(settings, ds, _request({"district": district, "age": age}, None))
        assert out["total"] == len(expected)
        assert out["total_was_estimated"] is False
        assert [r["record_no"] for r in out["records"]] == [r["record_no"] for r in expected][:50]
    one = datastore.search(settings, ds, _request({"district": DISTRICTS[1]}, threshold=100))
    assert one["total_was_estimated"] is True
    assert one["total"] == pytest.approx(rows / 4, rel=0.1)
    assert [r["_id"] for r in one["records"]] == sorted(r["_id"] for r in one["records"])


def test_a_dataset_chart_is_worked_out_once_per_version(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    orgs = people(session)
    code = loaded_resource(session, settings, orgs["MZ"], tmp_path, people=200)
    ds = service.publish(session, actor=ROOT, settings=settings, data=dataset_in(code))
    session.commit()
    made = preview.chart(settings, ds)
    assert made is not None
    assert (made.category, sorted(made.labels)) == ("district", sorted(DISTRICTS))
    assert made.values == [50.0] * 4
    kept = chart_path(settings, ds.uuid, ds.data_version or 0)
    assert json.loads(kept.read_text(encoding="utf-8")) == asdict(made)
    kept.write_text(json.dumps(asdict(made) | {"labels": ["kept"] * 4}), encoding="utf-8")
    again = preview.chart(settings, ds)
    assert again is not None
    assert again.labels == ["kept"] * 4  # read back, not worked out again

"""Versions of an entry: listed from the store, the current one marked, two compared."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from test_catalogue_loading import HEADER, IDS, csv_text, load_file, rows

from factories import ROOT, make_org, make_resource, make_user
from haihe.catalogue import service, versions
from haihe.catalogue.models import Resource
from haihe.core.auth import Principal, Role
from haihe.core.errors import NotFound
from haihe.core.settings import Settings
from haihe.orgs import service as orgs
from haihe.orgs.auth import principal_of_user


@pytest.fixture
def entry(session: Session) -> Resource:
    resource = make_resource(session, make_org(session, code="WJW"))
    session.commit()
    return resource


def _load(
    session: Session, settings: Settings, entry: Resource, path: Path, lines: list[str]
) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_file(session, settings, entry, path)


def test_versions_are_listed_newest_first_with_the_current_marked(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    assert versions.list_versions(session, actor=ROOT, settings=settings, code=entry.code) == []
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(3)), encoding="utf-8")
    load_file(session, settings, entry, path)
    path.write_text(csv_text(rows(5)), encoding="utf-8")
    load_file(session, settings, entry, path)
    listed = versions.list_versions(session, actor=ROOT, settings=settings, code=entry.code)
    assert [(v.version, v.row_count, v.current) for v in listed] == [(2, 5, True), (1, 3, False)]
    assert listed[0].created_by == "system:tests"
    assert listed[0].source["name"] == "deaths.csv"
    assert listed[0].source["rows_read"] == 5
    entry.current_version = 1  # the database, not the store's pointer, says which is current
    listed = versions.list_versions(session, actor=ROOT, settings=settings, code=entry.code)
    assert [v.current for v in listed] == [False, True]


def test_compare_on_the_key(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    _load(session, settings, entry, path, [
        HEADER,
        f"C1,{IDS[0]},甲,2024-01-01,70",
        f"C2,{IDS[1]},乙,2024-01-02,71",
        f"C3,{IDS[2]},,2024-01-03,72",
        f"C4,{IDS[3]},丁,2024-01-04,",
        f"C5,{IDS[4]},戊,2024-01-05,74",
    ])  # fmt: skip
    _load(session, settings, entry, path, [
        HEADER,
        f"C1,{IDS[0]},甲,2024-01-01,70",  # unchanged
        f"C2,{IDS[1]},乙,2024-01-02,81",  # changed: age
        f"C3,{IDS[2]},,2024-01-03,72",  # unchanged: two nulls are equal
        f"C4,{IDS[3]},丁,2024-01-04,90",  # changed: null → 90
        f"C6,{IDS[5]},己,2024-01-06,76",  # added (C5 removed)
        f"C7,{IDS[6]},庚,2024-01-07,77",  # added
    ])  # fmt: skip
    result = versions.compare(
        session, actor=ROOT, settings=settings, code=entry.code, from_version=1, to_version=2
    )
    assert (result.added, result.removed, result.changed, result.unchanged) == (2, 1, 2, 2)
    assert result.key == ["certificate_no"]
    back = versions.compare(
        session, actor=ROOT, settings=settings, code=entry.code, from_version=2, to_version=1
    )
    assert (back.added, back.removed, back.changed, back.unchanged) == (1, 2, 2, 2)


def test_compare_without_a_key_counts_whole_rows(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    items = [
        {"name": "district", "name_zh": "区"},
        {"name": "count", "name_zh": "数量", "type": "int64"},
    ]
    entry = make_resource(session, make_org(session, code="TJ"), items=items)
    path = tmp_path / "counts.csv"
    _load(session, settings, entry, path, ["district,count", "和平,1", "和平,1", "河东,2", ",3"])
    _load(session, settings, entry, path, ["district,count", "和平,1", "河东,5", ",3", "河西,4"])
    result = versions.compare(
        session, actor=ROOT, settings=settings, code=entry.code, from_version=1, to_version=2
    )
    # 和平,1 once fewer; 河东,2 → 河东,5 is one removed and one added; ,3 unchanged (null = null)
    assert (result.added, result.removed, result.changed, result.unchanged) == (2, 2, 0, 2)
    assert result.key == []


def test_unknown_versions_and_hidden_entries(
    session: Session, settings: Settings, entry: Resource, tmp_path: Path
) -> None:
    path = tmp_path / "deaths.csv"
    path.write_text(csv_text(rows(2)), encoding="utf-8")
    load_file(session, settings, entry, path)
    with pytest.raises(NotFound, match="has no version 7"):
        versions.compare(
            session, actor=ROOT, settings=settings, code=entry.code, from_version=1, to_version=7
        )
    with pytest.raises(NotFound, match="does not exist"):
        versions.list_versions(session, actor=ROOT, settings=settings, code="999-000001")
    other = make_org(session, code="MZ")
    make_user(session, Role.ORG_ADMIN, org=other, username="mz_admin")
    make_user(session, Role.AUDITOR, username="auditor")

    def principal(username: str) -> Principal:
        p = principal_of_user(orgs.get_user(session, username=username))
        assert p is not None
        return p

    # versions repeats service.can_view (it sits below service): both must agree
    outsider, auditor = principal("mz_admin"), principal("auditor")
    assert not service.can_view(outsider, entry)
    with pytest.raises(NotFound):
        versions.list_versions(session, actor=outsider, settings=settings, code=entry.code)
    assert service.can_view(auditor, entry)
    assert versions.list_versions(session, actor=auditor, settings=settings, code=entry.code)
    service.publish(session, actor=ROOT, code=entry.code)
    listed = versions.list_versions(session, actor=outsider, settings=settings, code=entry.code)
    assert [v.version for v in listed] == [1]

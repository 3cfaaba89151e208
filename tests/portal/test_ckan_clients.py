"""ckanapi — a third-party CKAN client, unchanged — drives the portal over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ckanapi
import pytest
from portal_city import City
from portal_world import DISTRICTS, PEOPLE, row

CKANAPI = Path(sys.executable).parent / "ckanapi"


def test_package_list_and_show_through_ckanapi(live: City) -> None:
    with ckanapi.RemoteCKAN(live.url) as site:
        names = site.action.package_list()
        assert names == sorted(live.names.values())
        pkg = site.action.package_show(id=live.names["records"])
    assert pkg["name"] == "care-subsidies"
    assert pkg["organization"]["name"] == "mz"
    assert [g["name"] for g in pkg["groups"]] == ["social-assistance"]
    assert sorted(t["name"] for t in pkg["tags"]) == ["养老", "补贴"]
    assert [r["format"] for r in pkg["resources"]] == ["CSV", "JSON", "Parquet", "XLSX"]
    assert pkg["resources"][0]["datastore_active"] is True
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    assert extras["open_type"] == "unconditional"
    assert extras["row_count"] == str(PEOPLE)
    assert pkg["author_email"] is None
    assert "maintainer_email" in pkg


def test_package_search_with_facets_and_filters(live: City) -> None:
    with ckanapi.RemoteCKAN(live.url) as site:
        everything = site.action.package_search(
            q="*:*", rows=1000, **{"facet.field": ["organization", "groups", "tags"]}
        )
        health = site.action.package_search(fq="groups:health")
        not_health = site.action.package_search(fq="-groups:health", sort="name asc")
        tagged = site.action.package_search(fq="tags:养老 organization:mz", sort="id asc")
        chinese = site.action.package_search(q="八十岁")
        recent = site.action.package_search(fq="metadata_modified:[2020-01-01T00:00:00Z TO NOW]")
        future = site.action.package_search(fq="metadata_modified:[NOW+1DAY TO *]")
    assert everything["count"] == 4
    groups = {i["name"]: i["count"] for i in everything["search_facets"]["groups"]["items"]}
    assert groups == {"social-assistance": 3, "health": 1}
    assert everything["facets"]["organization"] == {"mz": 4}
    tags = everything["facets"]["tags"]
    assert tags["养老"] == 3
    assert tags["高龄"] == 1
    assert [r["name"] for r in health["results"]] == ["care-subsidies-80-plus"]
    assert [r["name"] for r in not_health["results"]] == sorted(
        n for n in live.names.values() if n != "care-subsidies-80-plus"
    )
    assert tagged["count"] == 3
    ids = [r["id"] for r in tagged["results"]]
    assert ids == sorted(ids)
    assert [r["name"] for r in chinese["results"]] == ["care-subsidies-80-plus"]
    assert recent["count"] == 4
    assert future["count"] == 0


def test_organizations_groups_tags_and_status(live: City) -> None:
    with ckanapi.RemoteCKAN(live.url) as site:
        assert site.action.organization_list() == ["mz"]
        org = site.action.organization_show(id="mz", include_datasets=True)
        groups = site.action.group_list(all_fields=True)
        group = site.action.group_show(id="health", include_datasets=True)
        tags = site.action.tag_list()
        status = site.action.status_show()
        assert site.action.site_read() is True
    assert org["package_count"] == 4
    assert len(org["packages"]) == 4
    assert len(groups) == 21
    assert groups[0]["display_name"] == "经济建设"
    assert [p["name"] for p in group["packages"]] == ["care-subsidies-80-plus"]
    assert tags == sorted(["统计", "补贴", "养老", "高龄"])
    assert "datastore" in status["extensions"]


def test_datastore_search_returns_the_view_only(live: City) -> None:
    ds = live.dataset(live.names["records"])
    with ckanapi.RemoteCKAN(live.url) as site:
        page = site.action.datastore_search(
            resource_id=ds.resource_uuid,
            filters={"district": DISTRICTS[1]},
            sort="age desc",
            limit=5,
        )
        lists = site.action.datastore_search(
            resource_id=ds.resource_uuid, fields=["record_no", "age"], limit=2,
            records_format="lists",
        )  # fmt: skip
        as_csv = site.action.datastore_search(
            resource_id=ds.resource_uuid, fields=["record_no"], limit=3, records_format="csv"
        )
    expected = sorted(
        (row(i) for i in range(PEOPLE) if row(i)["district"] == DISTRICTS[1]),
        key=lambda r: (-r["age"], r["record_no"]),
    )
    assert page["total"] == len(expected)
    assert [r["record_no"] for r in page["records"]] == [r["record_no"] for r in expected[:5]]
    first = page["records"][0]
    assert set(first) == {"_id", "record_no", "name", "district", "granted_on", "age", "amount"}
    assert first["name"][0] == "王"
    assert set(first["name"][1:]) == {"*"}
    assert "id_number" not in first
    assert "diagnosis" not in first
    assert lists["records"] == [["R00000", 60], ["R00001", 61]]
    assert as_csv["records"] == "R00000\nR00001\nR00002\n"


def test_aggregated_dataset_holds_the_figures(live: City) -> None:
    ds = live.dataset(live.names["by_district"])
    with ckanapi.RemoteCKAN(live.url) as site:
        result = site.action.datastore_search(resource_id=ds.resource_uuid, limit=100)
    got = {r["district"]: (r["people"], round(r["total"], 2)) for r in result["records"]}
    expected: dict[str, tuple[int, float]] = {}
    for i in range(PEOPLE):
        r = row(i)
        n, total = expected.get(r["district"], (0, 0.0))
        expected[r["district"]] = (n + 1, round(total + r["amount"], 2))
    assert got == expected


def test_datastore_search_sql_reads_open_tables(live: City) -> None:
    ds = live.dataset(live.names["records"])
    sql = (
        f'SELECT district, count(*) AS n, round(avg(age), 1) AS age FROM "{ds.resource_uuid}" '
        "GROUP BY district ORDER BY district"
    )
    with ckanapi.RemoteCKAN(live.url) as site:
        result = site.action.datastore_search_sql(sql=sql)
    assert {r["district"]: r["n"] for r in result["records"]} == {d: 15 for d in DISTRICTS}
    assert [f["id"] for f in result["fields"]] == ["district", "n", "age"]


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ('DELETE FROM "{rid}"', "Only SELECT"),
        ("SELECT 1; SELECT 2", "single statement"),
        ("SELECT read_csv('/etc/passwd')", "not allowed"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "not allowed"),
        ('SELECT * INTO x FROM "{rid}"', "Only SELECT"),
        ("SELECT * FROM catalogue_resources", "does not exist"),
        ("SELECT pg_sleep(10)", "not allowed"),
        ("SELEC nonsense", "Only SELECT"),
        ("SELECT (", "cannot parse"),
    ],
)
def test_datastore_search_sql_refuses_what_it_must(live: City, sql: str, words: str) -> None:
    ds = live.dataset(live.names["records"])
    with ckanapi.RemoteCKAN(live.url) as site, pytest.raises(ckanapi.ValidationError) as err:
        site.action.datastore_search_sql(sql=sql.format(rid=ds.resource_uuid))
    assert words in " ".join(err.value.args[0]["query"])


def test_conditional_data_needs_an_approved_key(live: City) -> None:
    ds = live.dataset(live.names["conditional"])
    with ckanapi.RemoteCKAN(live.url) as anon, pytest.raises(ckanapi.NotAuthorized):
        anon.action.datastore_search(resource_id=ds.resource_uuid)
    with ckanapi.RemoteCKAN(live.url, apikey=live.keys["resident2"]) as other:
        with pytest.raises(ckanapi.NotAuthorized):
            other.action.datastore_search(resource_id=ds.resource_uuid)
        with pytest.raises(ckanapi.NotAuthorized):
            other.action.datastore_search_sql(sql=f'SELECT count(*) FROM "{ds.resource_uuid}"')
    with ckanapi.RemoteCKAN(live.url, apikey=live.keys["resident"]) as approved:
        result = approved.action.datastore_search(resource_id=ds.resource_uuid, limit=1)
    assert result["total"] == PEOPLE
    with ckanapi.RemoteCKAN(live.url, apikey="hhp_not-a-key") as wrong:
        with pytest.raises(ckanapi.NotAuthorized):
            wrong.action.package_list()


def test_unknown_ids_are_not_found(live: City) -> None:
    with ckanapi.RemoteCKAN(live.url) as site:
        for call in (
            lambda: site.action.package_show(id="no-such-dataset"),
            lambda: site.action.resource_show(id="00000000-0000-0000-0000-000000000000"),
            lambda: site.action.organization_show(id="nobody"),
            lambda: site.action.group_show(id="no-topic"),
            lambda: site.action.datastore_search(resource_id="nothing"),
            lambda: site.action.package_show(id=live.codes["closed"]),
        ):
            with pytest.raises(ckanapi.NotFound):
                call()


def test_bad_search_input_gets_ckans_errors(live: City) -> None:
    with ckanapi.RemoteCKAN(live.url) as site:
        with pytest.raises(ckanapi.ValidationError) as err:
            site.action.package_search(rows=1001)
        assert err.value.args[0]["rows"] == ["Must be less than or equal to 1000"]
        with pytest.raises(ckanapi.SearchQueryError):
            site.action.package_search(fq="colour:blue")
        with pytest.raises(ckanapi.SearchQueryError):
            site.action.package_search(fq="metadata_modified:[yesterday TO now]")


def test_ckanapi_cli_search_and_dump(live: City, tmp_path: Path) -> None:
    found = subprocess.run(
        [str(CKANAPI), "search", "datasets", "q=补贴", "-r", live.url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    names = sorted(json.loads(line)["name"] for line in found.stdout.splitlines() if line)
    assert names == sorted(live.names.values())
    out = tmp_path / "dump.jsonl"
    dump = subprocess.run(
        [str(CKANAPI), "dump", "datasets", "--all", "-q", "-O", str(out), "-r", live.url],
        capture_output=True, text=True, timeout=120, check=False, env=_with_venv_path(),
    )  # fmt: skip
    assert dump.returncode == 0, dump.stderr[-2000:]
    dumped = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(d["name"] for d in dumped) == sorted(live.names.values())
    assert all(d["resources"] for d in dumped)


def _with_venv_path() -> dict[str, str]:
    """The environment with the virtualenv's bin first: ckanapi's dump starts workers by name."""
    env = dict(os.environ)
    env["PATH"] = f"{CKANAPI.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_api_calls_are_counted_per_dataset(live: City) -> None:
    before = live.dataset(live.names["older"]).api_calls_total
    with ckanapi.RemoteCKAN(live.url) as site:
        site.action.package_show(id=live.names["older"])
        site.action.package_show(id=live.names["older"])
        site.action.package_search(q="八十岁")  # a search counts against no dataset
    assert live.dataset(live.names["older"]).api_calls_total == before + 2


@pytest.mark.parametrize("ext", ["csv", "json", "parquet", "xlsx"])
def test_every_resource_url_downloads_the_view(live: City, ext: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    import requests
    from openpyxl import load_workbook

    with ckanapi.RemoteCKAN(live.url) as site:
        pkg = site.action.package_show(id=live.names["older"])
    url = next(r["url"] for r in pkg["resources"] if r["format"].lower() == ext)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200
    expected = [row(i)["record_no"] for i in range(PEOPLE) if row(i)["age"] >= 80]
    path = tmp_path / f"data.{ext}"
    path.write_bytes(r.content)
    if ext == "csv":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        assert lines[0] == "record_no,district,age,amount"
        got = [line.split(",")[0] for line in lines[1:]]
    elif ext == "json":
        got = [rec["record_no"] for rec in json.loads(path.read_text(encoding="utf-8"))]
    elif ext == "parquet":
        got = pq.read_table(path).column("record_no").to_pylist()
    else:
        sheet = load_workbook(path, read_only=True).worksheets[0]
        got = [cells[0] for cells in sheet.iter_rows(min_row=2, values_only=True)]
    assert got == expected


def test_conditional_downloads_need_an_approved_key(live: City) -> None:
    import requests

    url = f"{live.url}/portal/dataset/{live.names['conditional']}/download.csv"
    assert requests.get(url, timeout=30).status_code == 403
    denied = requests.get(url, headers={"Authorization": live.keys["resident2"]}, timeout=30)
    assert denied.status_code == 403
    allowed = requests.get(url, headers={"Authorization": live.keys["resident"]}, timeout=30)
    assert allowed.status_code == 200
    assert len(allowed.text.splitlines()) == PEOPLE + 1
    gone = requests.get(
        f"{live.url}/portal/dataset/{live.codes['closed']}/download.csv", timeout=30
    )
    assert gone.status_code == 404

"""The public pages at /portal, through the real app: what a visitor, an applicant and a provider
see, and that a page view is counted."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from portal_city import City
from portal_world import DISTRICTS, PEOPLE

from factories import PASSWORD, bearers
from haihe.core.db import utcnow
from haihe.portal import service
from haihe.portal.materialise import today_in_city

HTML = {"accept": "text/html"}


def sign_in(client: TestClient, username: str) -> None:
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/portal"},
        headers=HTML, follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text


def test_home_shows_topics_newest_and_most_used(web: TestClient, city: City) -> None:
    r = web.get("/portal", headers=HTML)
    assert r.status_code == 200
    html = r.text
    assert "公共数据开放平台" in html
    # 21 topics, with the counts of the four datasets
    assert html.count('href="/portal/search?groups=') == 21
    assert re.search(r"社会救助</span><span class=\"pt-count\">3<", html)
    assert re.search(r"医疗卫生</span><span class=\"pt-count\">1<", html)
    for name in city.names.values():
        assert f"/portal/dataset/{name}" in html
    assert "不开放的名册" not in html
    web.cookies.set("haihe_lang", "en")
    try:
        english = web.get("/portal", headers=HTML).text
    finally:
        web.cookies.delete("haihe_lang")
    assert "Open Data Portal" in english
    assert "Social assistance" in english


def test_search_narrows_by_words_and_facets(web: TestClient, city: City) -> None:
    everything = web.get("/portal/search", headers=HTML).text
    assert "共 4 个数据集" in everything
    for facet in ("groups", "organization", "open_type", "res_format", "tags"):
        assert f'data-facet="{facet}"' in everything
    health = web.get("/portal/search?groups=health", headers=HTML).text
    assert "共 1 个数据集" in health
    assert "/portal/dataset/care-subsidies-80-plus" in health
    conditional = web.get("/portal/search?open_type=conditional", headers=HTML).text
    assert "共 1 个数据集" in conditional
    assert f"/portal/dataset/{city.names['conditional']}" in conditional
    both = web.get("/portal/search?q=按区&tags=统计", headers=HTML).text
    assert "共 1 个数据集" in both
    assert "/portal/dataset/care-subsidies-by-district" in both
    nothing = web.get("/portal/search?q=不开放的名册", headers=HTML).text
    assert "共 0 个数据集" in nothing


def test_an_open_dataset_page_previews_charts_and_counts_its_view(
    web: TestClient, city: City
) -> None:
    before = city.dataset("care-subsidies").views_total
    r = web.get("/portal/dataset/care-subsidies", headers=HTML)
    assert r.status_code == 200
    html = r.text
    assert city.dataset("care-subsidies").views_total == before + 1
    # the preview holds the view's masked names, never an ID number or a diagnosis
    assert "R00000" in html
    assert "王一0" not in html
    assert "身份证号" not in html
    assert "诊断" not in html
    assert 'id="portal-chart-data"' in html
    for ext in ("csv", "json", "parquet", "xlsx"):
        assert f"/portal/dataset/care-subsidies/download.{ext}" in html
    assert "/api/3/action/datastore_search?resource_id=" in html
    # the chart counts rows by district: PEOPLE rows over four districts
    data = re.search(r'id="portal-chart-data">(.*?)</script>', html, re.S)
    assert data is not None
    chart = json.loads(data.group(1))
    assert sorted(chart["labels"]) == sorted(DISTRICTS)
    assert sum(chart["values"]) == PEOPLE


def test_an_aggregated_dataset_charts_its_figure(web: TestClient) -> None:
    html = web.get("/portal/dataset/care-subsidies-by-district", headers=HTML).text
    data = re.search(r'id="portal-chart-data">(.*?)</script>', html, re.S)
    assert data is not None
    chart = json.loads(data.group(1))
    assert sorted(chart["labels"]) == sorted(DISTRICTS)
    assert sum(chart["values"]) == PEOPLE  # the "people" figure, summed by district


def test_a_conditional_dataset_shows_no_rows_until_approved(web: TestClient, city: City) -> None:
    name = city.names["conditional"]
    anon = web.get(f"/portal/dataset/{name}", headers=HTML).text
    assert 'data-testid="preview"' not in anon
    assert "download.csv" not in anon
    assert "/login?next=" in anon
    assert "仅用于养老服务研究" in anon  # its terms
    sign_in(web, "resident")
    try:
        approved = web.get(f"/portal/dataset/{name}", headers=HTML).text
        assert 'data-testid="approved"' in approved
        assert 'data-testid="preview"' in approved
        me = web.get("/portal/me", headers=HTML).text
        assert name in me
        assert "已通过" in me
        made = web.post("/portal/me/keys", data={"key_name": "网页"}, headers=HTML)
        secret = re.search(r"<code class=\"mono\">(hhp_[^<]+)</code>", made.text)
        assert secret is not None
        with city.sessions() as s:
            assert (
                service.principal_for_key(s, secret.group(1), today=today_in_city(utcnow())).name
                == "resident"
            )
    finally:
        web.cookies.clear()


def test_applying_from_the_page(web: TestClient, city: City) -> None:
    name = city.names["conditional"]
    sign_in(web, "resident2")
    try:
        page = web.get(f"/portal/dataset/{name}", headers=HTML).text
        assert 'action="/portal/dataset/' in page
        refused = web.post(f"/portal/dataset/{name}/apply", data={"purpose": "研究"}, headers=HTML)
        assert refused.status_code == 422
        assert "accept" in refused.text
        r = web.post(
            f"/portal/dataset/{name}/apply",
            data={"purpose": "养老服务研究", "accept": "yes"},
            headers=HTML,
            follow_redirects=False,
        )
        assert r.status_code == 303
        pending = web.get(r.headers["location"], headers=HTML).text
        assert 'data-testid="pending"' in pending
        assert 'data-testid="preview"' not in pending
    finally:
        web.cookies.clear()


def test_unknown_and_closed_datasets_are_not_found(web: TestClient, city: City) -> None:
    assert web.get("/portal/dataset/no-such-thing", headers=HTML).status_code == 404
    assert web.get("/portal/me", headers=HTML, follow_redirects=False).status_code in (302, 303)


WHO = ["anon", "resident", "resident2", "mz_admin", "rs_op", "auditor", "platform"]


def test_who_may_open_each_portal_page(web: TestClient, city: City) -> None:
    """Browsing and DCAT are public; applying, "my open data" and keys need a signed-in user."""
    headers = bearers(web, WHO[1:])
    name = city.names["records"]
    everyone, users = set(WHO), set(WHO[1:])
    matrix: list[tuple[str, str, dict[str, str] | None, set[str]]] = [
        ("GET", "/portal", None, everyone),
        ("GET", "/portal/search?q=养老", None, everyone),
        ("GET", f"/portal/dataset/{name}", None, everyone),
        ("GET", f"/portal/dataset/{name}/download.csv", None, everyone),
        ("GET", "/portal/chart.js", None, everyone),
        ("GET", "/catalog.jsonld", None, everyone),
        ("GET", f"/dataset/{name}.ttl", None, everyone),
        ("GET", "/portal/me", None, users),
        ("POST", "/portal/me/keys", {"key_name": "k"}, users),
        # 无条件开放: nobody applies for it (409 for users; the anonymous must sign in)
        ("POST", f"/portal/dataset/{name}/apply", {"purpose": "研究", "accept": "yes"}, set()),
    ]
    wrong = []
    for method, path, form, allowed in matrix:
        for who in WHO:
            r = web.request(
                method, path, data=form, headers=headers[who] | HTML, follow_redirects=False
            )
            if who in allowed:
                ok = r.status_code == 200
            elif who == "anon":
                ok = r.status_code in (401, 303)
            else:
                ok = r.status_code in (403, 409, 422)
            if not ok:
                wrong.append(f"{method} {path} as {who}: {r.status_code}")
    assert wrong == []

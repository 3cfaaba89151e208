"""DCAT-AP endpoints, read back with rdflib as a harvester would."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from portal_city import City
from rdflib import RDF, Graph, Literal, Namespace, URIRef

from haihe.portal import dcat

# plain namespaces: rdflib's defined ones warn when pytest looks through the module
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
BASE = "http://testserver"


def parsed(client: TestClient, path: str, fmt: str) -> Graph:
    r = client.get(path)
    assert r.status_code == 200, r.text
    g = Graph()
    g.parse(data=r.content, format=fmt)
    return g


@pytest.mark.parametrize(("ext", "fmt"), [("jsonld", "json-ld"), ("ttl", "turtle"), ("rdf", "xml")])
def test_the_catalogue_lists_every_open_dataset(
    web: TestClient, city: City, ext: str, fmt: str
) -> None:
    g = parsed(web, f"/catalog.{ext}", fmt)
    catalog = URIRef(f"{BASE}/catalog")
    assert (catalog, RDF.type, DCAT.Catalog) in g
    datasets = set(g.objects(catalog, DCAT.dataset))
    assert len(datasets) == 4
    assert datasets == set(g.subjects(RDF.type, DCAT.Dataset))
    titles = {str(t) for d in datasets for t in g.objects(d, DCTERMS.title)}
    assert "不开放的名册" not in titles
    assert "八十岁以上老人补贴" in titles


def test_a_dataset_in_dcat_ap_shape(web: TestClient, city: City) -> None:
    ds = city.dataset("care-subsidies")
    g = parsed(web, "/dataset/care-subsidies.ttl", "turtle")
    node = URIRef(f"{BASE}/dataset/{ds.uuid}")
    assert (node, RDF.type, DCAT.Dataset) in g
    assert (node, DCTERMS.title, Literal("居家养老补贴（按区汇总）", lang="zh")) in g
    assert (node, DCTERMS.title, Literal("Home-care subsidies by district", lang="en")) in g
    assert (node, DCTERMS.identifier, Literal(ds.uuid)) in g
    assert {str(k) for k in g.objects(node, DCAT.keyword)} == {"养老", "补贴"}
    publisher = g.value(node, DCTERMS.publisher)
    assert publisher == URIRef(f"{BASE}/organization/mz")
    assert (publisher, FOAF.name, Literal("市民政局", lang="zh")) in g
    themes = {str(t) for t in g.objects(node, DCAT.theme)}
    assert themes == {
        f"{BASE}/group/social-assistance",
        "http://publications.europa.eu/resource/authority/data-theme/SOCI",
    }
    access = "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
    assert (node, DCTERMS.accessRights, URIRef(access)) in g
    distributions = list(g.objects(node, DCAT.distribution))
    assert len(distributions) == 4
    downloads = {str(g.value(d, DCAT.downloadURL)): str(g.value(d, DCAT.mediaType))
                 for d in distributions}  # fmt: skip
    assert downloads[f"{BASE}/portal/dataset/care-subsidies/download.csv"] == (
        "https://www.iana.org/assignments/media-types/text/csv"
    )
    assert f"{BASE}/portal/dataset/care-subsidies/download.parquet" in downloads
    # the JSON-LD form is the same graph
    same = parsed(web, f"/dataset/{ds.uuid}.jsonld", "json-ld")
    assert set(same) == set(g)


def test_conditional_datasets_are_restricted(web: TestClient, city: City) -> None:
    ds = city.dataset(city.names["conditional"])
    g = parsed(web, f"/dataset/{ds.name}.jsonld", "json-ld")
    access = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
    assert (URIRef(f"{BASE}/dataset/{ds.uuid}"), DCTERMS.accessRights, URIRef(access)) in g


def test_the_catalogue_is_paged_with_hydra(web: TestClient, city: City) -> None:
    with city.sessions() as s:
        pages = [
            dcat.catalog_graph(s, base=BASE, ext="ttl", page=n, q="", fq="", per_page=3)
            for n in (1, 2)
        ]
    first, second = pages
    view = URIRef(f"{BASE}/catalog.ttl?page=1")
    assert (view, RDF.type, HYDRA.PartialCollectionView) in first
    assert (view, RDF.type, HYDRA.PagedCollection) in first
    assert first.value(view, HYDRA.totalItems).toPython() == 4
    assert first.value(view, HYDRA.itemsPerPage).toPython() == 3
    assert first.value(view, HYDRA.next) == URIRef(f"{BASE}/catalog.ttl?page=2")
    assert str(first.value(view, HYDRA.nextPage)) == f"{BASE}/catalog.ttl?page=2"
    assert first.value(view, HYDRA.last) == URIRef(f"{BASE}/catalog.ttl?page=2")
    assert first.value(view, HYDRA.previous) is None
    view2 = URIRef(f"{BASE}/catalog.ttl?page=2")
    assert second.value(view2, HYDRA.previous) == URIRef(f"{BASE}/catalog.ttl?page=1")
    assert second.value(view2, HYDRA.next) is None
    on_pages = [set(p.subjects(RDF.type, DCAT.Dataset)) for p in pages]
    assert [len(p) for p in on_pages] == [3, 1]
    assert not on_pages[0] & on_pages[1]
    # over HTTP: one page of 100, and filters as in package_search
    g = parsed(web, "/catalog.ttl?fq=groups:health", "turtle")
    assert len(set(g.subjects(RDF.type, DCAT.Dataset))) == 1
    filtered = URIRef(f"{BASE}/catalog.ttl?fq=groups%3Ahealth&page=1")
    assert g.value(filtered, HYDRA.totalItems).toPython() == 1


def test_bad_dcat_requests(web: TestClient, city: City) -> None:
    assert web.get("/dataset/no-such-dataset.ttl").status_code == 404
    assert web.get("/dataset/care-subsidies.pdf").status_code == 404
    assert web.get("/catalog.ttl?page=9").status_code == 404
    assert web.get("/catalog.ttl?page=0").status_code == 422
    bad = web.get("/catalog.jsonld?fq=colour:red")
    assert bad.status_code == 422
    assert set(bad.json()["error"]) == {"code", "message", "details"}

"""DCAT — 数据目录词汇: the portal's catalogue and datasets as DCAT-AP, for harvesters and
national portals.

``/catalog.{jsonld,ttl,rdf}`` is the catalogue, paged like ckanext-dcat's (``?page=``, 100
datasets a page, ``q``/``fq`` as in package_search): the page node is both a
``hydra:PartialCollectionView`` (``hydra:first``/``next``/``previous``/``last``) and, for older
harvesters, a ``hydra:PagedCollection`` (``hydra:firstPage``/``nextPage``…); both carry
``hydra:totalItems`` and ``hydra:itemsPerPage``. ``/dataset/{id or name}.{jsonld,ttl,rdf}`` is
one dataset. URIs follow CKAN's: ``<site>/dataset/<id>``, ``<site>/dataset/<id>/resource/<id>``.
Metadata of 有条件开放 datasets is public too (``dct:accessRights`` RESTRICTED); 不予开放 and
withdrawn datasets never appear.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from rdflib import RDF, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, SKOS
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource
from haihe.core.errors import InvalidInput, NotFound
from haihe.core.web import DbSession
from haihe.orgs.models import Organisation
from haihe.portal import ckan, search, service
from haihe.portal import repository as repo
from haihe.portal.models import Dataset
from haihe.portal.topics import BY_NAME, LICENCE_BY_ID

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
PER_PAGE = 100
FORMATS = {
    "jsonld": ("json-ld", "application/ld+json"),
    "ttl": ("turtle", "text/turtle; charset=utf-8"),
    "rdf": ("xml", "application/rdf+xml"),
}
# The EU data themes (DCAT-AP's controlled vocabulary) nearest to each of the city's topics.
EU_THEMES = {
    "economy": "ECON", "environment": "ENVI", "education-science": "EDUC", "transport": "TRAN",
    "social-development": "SOCI", "public-safety": "JUST", "finance-tax": "ECON",
    "credit": "ECON", "health": "HEAL", "social-security": "SOCI", "housing": "REGI",
    "agriculture": "AGRI", "organisations": "GOVE", "culture-leisure": "EDUC",
    "life-services": "SOCI", "weather": "ENVI", "legal-services": "JUST", "work-safety": "JUST",
    "market-regulation": "ECON", "social-assistance": "SOCI", "other": "GOVE",
}  # fmt: skip
FREQUENCIES = {
    "realtime": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
    "quarterly": "QUARTERLY", "yearly": "ANNUAL", "irregular": "IRREG",
}  # fmt: skip
CONTEXT = {
    "dcat": str(DCAT), "dct": str(DCTERMS), "foaf": str(FOAF), "skos": str(SKOS),
    "vcard": str(VCARD), "hydra": str(HYDRA), "xsd": str(XSD),
}  # fmt: skip

router = APIRouter(tags=["portal"])


def new_graph() -> Graph:
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("skos", SKOS),
                       ("vcard", VCARD), ("hydra", HYDRA)):  # fmt: skip
        g.bind(prefix, ns)
    return g


def dataset_uri(base: str, ds: Dataset) -> URIRef:
    return URIRef(f"{base}/dataset/{ds.uuid}")


def _text(g: Graph, node: URIRef | BNode, prop: URIRef, zh: str | None, en: str | None) -> None:
    if zh:
        g.add((node, prop, Literal(zh, lang="zh")))
    if en:
        g.add((node, prop, Literal(en, lang="en")))


def _when(moment: dt.datetime) -> Literal:
    return Literal(ckan.ckan_time(moment), datatype=XSD.dateTime)


def add_dataset(
    g: Graph, base: str, ds: Dataset, *, org: Organisation, resource: Resource
) -> URIRef:
    """Add one dataset's DCAT-AP description to ``g``; return its node."""
    node = dataset_uri(base, ds)
    g.add((node, RDF.type, DCAT.Dataset))
    g.add((node, DCTERMS.identifier, Literal(ds.uuid)))
    _text(g, node, DCTERMS.title, ds.title_zh, ds.title_en)
    _text(g, node, DCTERMS.description, ds.notes_zh, ds.notes_en)
    for tag in ds.tags:
        g.add((node, DCAT.keyword, Literal(tag.tag)))
    g.add((node, DCTERMS.issued, _when(ds.created_at)))
    g.add((node, DCTERMS.modified, _when(ds.modified_at)))
    g.add((node, DCAT.landingPage, URIRef(f"{base}/portal/dataset/{ds.name}")))
    g.add((node, DCTERMS.language, URIRef(f"{EU}language/ZHO")))
    rights = "PUBLIC" if ds.open_type.value == "unconditional" else "RESTRICTED"
    g.add((node, DCTERMS.accessRights, URIRef(f"{EU}access-right/{rights}")))
    frequency = FREQUENCIES.get(ds.update_frequency.value, "UNKNOWN")
    g.add((node, DCTERMS.accrualPeriodicity, URIRef(f"{EU}frequency/{frequency}")))
    publisher = URIRef(f"{base}/organization/{ckan.org_name(org)}")
    g.add((node, DCTERMS.publisher, publisher))
    g.add((publisher, RDF.type, FOAF.Organization))
    _text(g, publisher, FOAF.name, org.name_zh, org.name_en)
    topic = BY_NAME.get(ds.topic)
    if topic is not None:
        theme = URIRef(f"{base}/group/{topic.name}")
        g.add((node, DCAT.theme, theme))
        g.add((theme, RDF.type, SKOS.Concept))
        _text(g, theme, SKOS.prefLabel, topic.zh, topic.en)
        g.add((node, DCAT.theme, URIRef(f"{EU}data-theme/{EU_THEMES[topic.name]}")))
    if resource.steward_name:
        contact = BNode(f"contact-{ds.uuid}")
        g.add((node, DCAT.contactPoint, contact))
        g.add((contact, RDF.type, VCARD.Organization))
        g.add((contact, VCARD.fn, Literal(resource.steward_name)))
    licence = LICENCE_BY_ID.get(ds.licence_id)
    for position, fmt in enumerate(f for f in ds.formats.split(",") if f):
        res = ckan.resource_dict(ds, fmt, position, base_url=base)
        dist = URIRef(f"{node}/resource/{res['id']}")
        g.add((node, DCAT.distribution, dist))
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.identifier, Literal(res["id"])))
        _text(g, dist, DCTERMS.title, res["name"], None)
        g.add((dist, DCTERMS.format, Literal(fmt)))
        g.add((dist, DCAT.mediaType, URIRef(IANA + str(res["mimetype"]))))
        g.add((dist, DCAT.accessURL, URIRef(res["url"])))
        g.add((dist, DCAT.downloadURL, URIRef(res["url"])))
        if ds.data_updated_at is not None:
            g.add((dist, DCTERMS.modified, _when(ds.data_updated_at)))
        if res["size"] is not None:
            g.add((dist, DCAT.byteSize, Literal(int(res["size"]), datatype=XSD.nonNegativeInteger)))
        if licence is not None and licence.url:
            g.add((dist, DCTERMS.license, URIRef(licence.url)))
    return node


def catalog_graph(
    session: Session,
    *,
    base: str,
    ext: str,
    page: int,
    q: str,
    fq: str,
    per_page: int = PER_PAGE,
) -> Graph:
    """One page of the catalogue as a graph; NotFound past the last page."""
    query = search.parse(q, fq)
    found = search.search(
        session, query=query, sort=[Dataset.modified_at.desc(), Dataset.id.asc()],
        rows=per_page, start=(page - 1) * per_page, facet_fields=[], facet_limit=0,
    )  # fmt: skip
    last = max(1, math.ceil(found.count / per_page))
    if page > last:
        raise NotFound(f"page {page} is past the last page ({last})")
    g = new_graph()
    catalog = URIRef(f"{base}/catalog")
    g.add((catalog, RDF.type, DCAT.Catalog))
    _text(g, catalog, DCTERMS.title, "公共数据开放平台", "Open Data Portal")
    _text(g, catalog, DCTERMS.description, "本市各部门依法向社会开放的数据集。",
          "Datasets the city's departments open to the public.")  # fmt: skip
    g.add((catalog, FOAF.homepage, URIRef(f"{base}/portal")))
    g.add((catalog, DCTERMS.language, URIRef(f"{EU}language/ZHO")))
    datasets = repo.datasets_by_ids(session, found.ids)
    orgs = repo.orgs_by_ids(session, {d.org_id for d in datasets})
    resources = repo.resources_by_ids(session, {d.resource_id for d in datasets})
    for ds in datasets:
        node = add_dataset(g, base, ds, org=orgs[ds.org_id], resource=resources[ds.resource_id])
        g.add((catalog, DCAT.dataset, node))
    if datasets:
        g.add((catalog, DCTERMS.modified, _when(max(d.modified_at for d in datasets))))
    _paging(g, f"{base}/catalog.{ext}", extra=_extra(q, fq), page=page, last=last,
            total=found.count, per_page=per_page)  # fmt: skip
    return g


def _extra(q: str, fq: str) -> str:
    params = {k: v for k, v in (("q", q), ("fq", fq)) if v}
    return urlencode(params)


def _paging(
    g: Graph, url: str, *, extra: str, page: int, last: int, total: int, per_page: int
) -> None:
    def at(n: int) -> str:
        return f"{url}?{extra + '&' if extra else ''}page={n}"

    view = URIRef(at(page))
    g.add((view, RDF.type, HYDRA.PartialCollectionView))
    g.add((view, RDF.type, HYDRA.PagedCollection))
    g.add((view, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    g.add((view, HYDRA.itemsPerPage, Literal(per_page, datatype=XSD.integer)))
    links = {"first": 1, "last": last}
    if page > 1:
        links["previous"] = page - 1
    if page < last:
        links["next"] = page + 1
    for name, n in links.items():
        g.add((view, HYDRA[name], URIRef(at(n))))
        g.add((view, HYDRA[f"{name}Page"], Literal(at(n))))


def _serialise(g: Graph, ext: str) -> Response:
    if ext not in FORMATS:
        raise NotFound(f"no DCAT serialisation .{ext}; use .jsonld, .ttl or .rdf")
    fmt, media = FORMATS[ext]
    kwargs: dict[str, Any] = {"context": CONTEXT, "auto_compact": True} if fmt == "json-ld" else {}
    body: bytes = g.serialize(format=fmt, encoding="utf-8", **kwargs)
    return Response(body, media_type=media)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/catalog.{ext}", summary="The portal's catalogue as DCAT-AP (paged)")
def catalog(
    request: Request,
    session: DbSession,
    ext: str,
    page: Annotated[int, Query(ge=1, description="Page of 100 datasets.")] = 1,
    q: Annotated[str, Query(max_length=500)] = "",
    fq: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    """Datasets newest first, 100 a page, with hydra paging links; q and fq as package_search."""
    if ext not in FORMATS:
        raise NotFound(f"no DCAT serialisation .{ext}; use .jsonld, .ttl or .rdf")
    try:
        g = catalog_graph(session, base=_base(request), ext=ext, page=page, q=q, fq=fq)
    except search.SearchQueryError as exc:
        raise InvalidInput(exc.message) from None
    return _serialise(g, ext)


@router.get("/dataset/{ref}.{ext}", summary="One open dataset as DCAT-AP")
def dataset(request: Request, session: DbSession, ref: str, ext: str) -> Response:
    """One active dataset, by id or name."""
    if ext not in FORMATS:
        raise NotFound(f"no DCAT serialisation .{ext}; use .jsonld, .ttl or .rdf")
    ds = service.get_dataset(session, ref=ref)
    g = new_graph()
    add_dataset(
        g, _base(request), ds, org=service.provider_of(session, ds),
        resource=service.resource_of(session, ds),
    )  # fmt: skip
    return _serialise(g, ext)

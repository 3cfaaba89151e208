"""The grid map: GeoJSON import level by level, links to members, point lookup, grid workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from governance_world import CELLS, COMMUNITIES, DISTRICT, INSIDE, OUTSIDE, build, collection
from sqlalchemy.orm import Session, sessionmaker

from factories import ROOT
from haihe.core.errors import InvalidInput
from haihe.governance import grids, lookup, service
from haihe.governance import repository as repo
from haihe.governance.lookup import GridIndex
from haihe.governance.models import AreaLevel


def test_import_links_areas_to_members_and_places_points(
    session_factory: sessionmaker[Session],
) -> None:
    build(session_factory)
    with session_factory() as s:
        assert repo.count_areas(s) == {"district": 1, "street": 2, "community": 4, "cell": 8}
        cell = grids.get_area(s, code=CELLS[0])
        community = grids.get_area(s, code=COMMUNITIES[0])
        assert (cell.community_id, cell.street_id) == (community.id, community.street_id)
        assert community.org_id is not None  # linked by code to the community organisation
        assert cell.org_id is None  # cells are not organisations
        found = service.place(s, lng=INSIDE[0], lat=INSIDE[1])
        assert found.cell_code == CELLS[0]
        assert found.district_id == grids.get_area(s, code=DISTRICT).id
        with pytest.raises(InvalidInput, match="outside every grid cell"):
            service.place(s, lng=OUTSIDE[0], lat=OUTSIDE[1])


def test_address_is_matched_against_area_names(session_factory: sessionmaker[Session]) -> None:
    build(session_factory)
    with session_factory() as s:
        area, found = service.place_address(s, address="和平区新兴社区第2网格 12号楼门口")
        assert area.code == COMMUNITIES[1] + "002"
        assert found.cell_code == area.code
        area, _found = service.place_address(s, address="五大道社区睦南道")
        assert area.code == COMMUNITIES[3]
        with pytest.raises(InvalidInput, match="names no grid cell"):
            service.place_address(s, address="北京市东城区")


def test_reimport_moves_the_revision_and_every_index_follows(
    session_factory: sessionmaker[Session],
) -> None:
    build(session_factory)
    with session_factory() as s:
        before = lookup.index_for(s)
        assert service.place(s, lng=117.05, lat=39.02).cell_code == CELLS[0]
        # move cell 1 of the first community onto the whole community: its neighbour loses it
        body = json.loads(collection(AreaLevel.CELL))
        first = body["features"][0]
        first["geometry"]["coordinates"] = [
            [[117.0, 39.0], [117.2, 39.0], [117.2, 39.1], [117.0, 39.1], [117.0, 39.0]]
        ]
        body["features"] = [first]
        out = grids.import_geojson(s, actor=ROOT, data=json.dumps(body), level=AreaLevel.CELL)
        assert (out.created, out.updated) == (0, 1)
        s.commit()
    with session_factory() as s:
        after = lookup.index_for(s)
        number = int(before.revision.split("@")[0])
        assert after.revision.startswith(f"{number + 1}@")
        assert service.place(s, lng=117.15, lat=39.05).cell_code == CELLS[0]


@pytest.mark.parametrize(
    ("level", "body", "words"),
    [
        (AreaLevel.DISTRICT, b"not json", "not JSON"),
        (AreaLevel.DISTRICT, b'{"type": "Feature"}', "FeatureCollection"),
        (AreaLevel.STREET, None, "not imported yet"),
        (AreaLevel.DISTRICT, "bowtie", "invalid polygon"),
        (AreaLevel.DISTRICT, "point", "Polygon or MultiPolygon"),
    ],
)
def test_bad_geojson_is_refused_and_nothing_is_kept(
    session_factory: sessionmaker[Session], level: AreaLevel, body: object, words: str
) -> None:
    build(session_factory, with_grids=False)
    if body is None:
        data: bytes | str = collection(AreaLevel.STREET)
    elif body in ("bowtie", "point"):
        doc = json.loads(collection(AreaLevel.DISTRICT))
        doc["features"][0]["geometry"] = (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
            if body == "bowtie"
            else {"type": "Point", "coordinates": [117.0, 39.0]}
        )
        data = json.dumps(doc)
    else:
        assert isinstance(body, bytes)
        data = body
    with session_factory() as s:
        with pytest.raises(InvalidInput, match=words):
            grids.import_geojson(s, actor=ROOT, data=data, level=level)
        s.rollback()
        assert repo.count_areas(s) == {}
        assert repo.grid_revision(s) == "0"


def test_only_grid_workers_are_assigned_to_cells(session_factory: sessionmaker[Session]) -> None:
    build(session_factory)
    with session_factory() as s:
        with pytest.raises(InvalidInput, match="grid_worker"):
            grids.assign_worker(s, actor=ROOT, cell_code=CELLS[1], username="street_op")
        with pytest.raises(InvalidInput, match="not a grid cell"):
            grids.assign_worker(s, actor=ROOT, cell_code=COMMUNITIES[0], username="worker")
        grids.assign_worker(s, actor=ROOT, cell_code=CELLS[1], username="worker")
        worker = grids.orgs.get_user(s, username="worker")
        assert sorted(repo.worker_cells(s, worker.id)) == sorted(
            grids.get_area(s, code=c).id for c in CELLS[:2]
        )


def test_vectorised_lookup_agrees_with_a_point_by_point_loop() -> None:
    rng = np.random.default_rng(7)
    boxes = []
    for i in range(20):
        for j in range(20):
            boxes.append(
                shapely.box(117 + i * 0.01, 39 + j * 0.01, 117.01 + i * 0.01, 39.01 + j * 0.01)
            )
    index = GridIndex(
        "1",
        ids=list(range(1, len(boxes) + 1)),
        codes=[str(i) for i in range(len(boxes))],
        parents=[(None, None, None)] * len(boxes),
        geometries=[shapely.to_geojson(b) for b in boxes],
    )
    lng = rng.uniform(116.99, 117.21, 3000)
    lat = rng.uniform(38.99, 39.21, 3000)
    fast = index.positions(lng, lat)
    slow = []
    for x, y in zip(lng, lat, strict=True):
        point = shapely.Point(x, y)
        slow.append(next((k for k, b in enumerate(boxes) if b.intersects(point)), -1))
    assert fast.tolist() == slow
    assert (fast == -1).sum() > 0  # some fell outside, and were told so

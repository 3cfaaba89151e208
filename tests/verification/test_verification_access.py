"""Who may call each verification route, over HTTP, on the real app.

RSJ's operator and API client hold verify grants; CL's operator holds none; the provider's admin,
a resident and the platform admin verify nothing (they hold no grants), the platform admin alone
binds sources and sees every job. A job's routes answer 404 to whoever may not see it; scoring
it also needs the grants to run it, which the platform admin lacks (403).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from verify_world import World, build_world, csv_bytes, grant_all, payments, pid

from haihe.core.settings import Settings
from haihe.verification import api

CALLERS = ["anon", "resident", "platform", "wjw_admin", "cl_op", "rsj_op", "rsj_client"]
SIGNED_IN = set(CALLERS) - {"anon"}
GRANTEES = {"rsj_op", "rsj_client"}
JOB_SEERS = GRANTEES | {"platform"}
CSV = f"id_number\n{pid(0)}\n{pid(3)}\n".encode()
PAYMENTS = csv_bytes(payments())
TRUTH = csv_bytes([{"pension_no": f"P{i:03d}", "alive": i not in (0, 2)} for i in range(8)])


@pytest.fixture
def world(client: TestClient, session: Session, settings: Settings, tmp_path: Path) -> World:
    built = build_world(session, settings, tmp_path / "in")
    grant_all(session, built)
    return built


def job_of(client: TestClient, world: World, rule: str = "alive") -> int:
    """RSJ's finished job: the rule ``alive`` over two people, or ``pension_death_stop`` over
    the eight payments."""
    res = client.post(
        "/api/v1/verify/jobs",
        headers=world.headers("rsj_op"),
        data={"rule": rule, "params": '{"on": "2024-12-31"}'},
        files={"file": ("s.csv", CSV if rule == "alive" else PAYMENTS, "text/csv")},
    )
    assert res.status_code == 202, res.text
    return int(res.json()["id"])


def expected(who: str, ok: int, admitted: set[str], refused: int, path: str) -> int:
    if who == "anon":
        return 401
    if who in admitted:
        return ok
    return 404 if "{job_id}" in path and who not in JOB_SEERS else refused


ROWS: list[tuple[str, str, int, set[str], int]] = [
    ("GET", "/api/v1/verify/rules", 200, SIGNED_IN, 403),
    ("GET", "/api/v1/verify/scenarios", 200, SIGNED_IN, 403),
    ("GET", "/api/v1/verify/bindings", 200, SIGNED_IN, 403),
    ("PUT", "/api/v1/verify/bindings/{role}", 200, {"platform"}, 403),
    ("DELETE", "/api/v1/verify/bindings/{role}", 204, {"platform"}, 403),
    ("POST", "/api/v1/verify/jobs", 202, GRANTEES, 403),
    ("GET", "/api/v1/verify/jobs", 200, SIGNED_IN, 403),
    ("GET", "/api/v1/verify/jobs/{job_id}", 200, JOB_SEERS, 404),
    ("POST", "/api/v1/verify/jobs/{job_id}/cancel", 409, JOB_SEERS, 404),  # already done
    ("GET", "/api/v1/verify/jobs/{job_id}/download", 200, JOB_SEERS, 404),
    ("POST", "/api/v1/verify/jobs/{job_id}/score", 200, GRANTEES, 403),  # platform: no grants
    ("POST", "/api/v1/verify/{rule}", 200, GRANTEES, 403),
]


def test_every_route_has_a_row() -> None:
    routes = {(m, r.path) for r in api.router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == {(m, p) for m, p, *_ in ROWS}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize(("method", "path", "ok", "admitted", "refused"), ROWS)
def test_access(
    client: TestClient,
    world: World,
    who: str,
    method: str,
    path: str,
    ok: int,
    admitted: set[str],
    refused: int,
) -> None:
    scored = path.endswith("/score")
    if "{job_id}" in path:
        job_id = job_of(client, world, "pension_death_stop" if scored else "alive")
    else:
        job_id = 0
    url = path.format(role="household", rule="alive", job_id=job_id)
    kwargs: dict[str, object] = {}
    if scored:
        kwargs["files"] = {"truth": ("truth.csv", TRUTH, "text/csv")}
    elif method == "PUT":
        kwargs["json"] = {"code": world.codes["household"]}
    elif path.endswith("/jobs"):
        kwargs["data"] = {"rule": "alive", "params": '{"on": "2024-12-31"}'}
        kwargs["files"] = {"file": ("s.csv", CSV, "text/csv")}
    elif method == "POST" and path.endswith("{rule}"):
        kwargs["json"] = {"subjects": [{"id_number": pid(0)}], "params": {"on": "2024-12-31"}}
    res = client.request(method, url, headers=world.headers(who), **kwargs)  # type: ignore[arg-type]
    assert res.status_code == expected(who, ok, admitted, refused, path), res.text
    if res.status_code >= 400:
        assert set(res.json()["error"]) >= {"code", "message"}


def test_a_single_check_over_http_answers_without_rows(client: TestClient, world: World) -> None:
    res = client.post(
        "/api/v1/verify/alive",
        headers=world.headers("rsj_client"),
        json={
            "subjects": [{"id_number": pid(0)}, {"id_number": pid(3)}],
            "params": {"on": "2024-12-31"},
        },
    )
    body = res.json()
    assert [a["verdict"] for a in body["answers"]] == ["no", "yes"]
    assert {s["role"] for s in body["sources"]} == {"deaths", "cremations"}
    assert set(body["answers"][0]) == {"ref", "id_number", "verdict", "reasons", "confidence"}


def test_a_finished_job_downloads_one_row_per_subject_in_order(
    client: TestClient, world: World
) -> None:
    job_id = job_of(client, world)
    res = client.get(f"/api/v1/verify/jobs/{job_id}/download", headers=world.headers("rsj_op"))
    lines = res.content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[2].strip('"') for line in lines[1:]] == ["no", "yes"]

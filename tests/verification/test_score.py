"""Scoring a job against a ground truth over REST (``POST /api/v1/verify/jobs/{id}/score``).

The job is RSJ's ``pension_death_stop`` over the eight payments of ``verify_world`` on
2024-12-31: its stop list is P000 and P002 (persons 0 and 2 died), P005 is already stopped.
The truth below is made to disagree with it, so the expected figures are counted by hand.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from verify_world import World, build_world, csv_bytes, grant_all, payments, pid, write_csv

from haihe.audit.models import AuditEntry
from haihe.core.db import transaction
from haihe.core.settings import Settings
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user
from haihe.verification import jobs

ON = '{"on": "2024-12-31"}'
# alive = false: P000 (listed: tp), P004 (alive by the registers, not listed: fn), P005
# (already stopped: outside the question), P009 (not on the payment list at all: fn). P002 is
# listed but alive by this truth: fp. So tp 1, fp 1, fn 2: precision 1/2, recall 1/3.
DEAD = {0, 4, 5, 9}
TRUTH = [{"pension_no": f"P{i:03d}", "alive": i not in DEAD} for i in range(10)]
EXPECTED = {"tp": 1, "fp": 1, "fn": 2, "precision": 0.5, "recall": 0.3333}


@pytest.fixture
def world(client: TestClient, session: Session, settings: Settings, tmp_path: Path) -> World:
    built = build_world(session, settings, tmp_path / "in")
    grant_all(session, built)
    return built


def run_job(client: TestClient, world: World, rule: str = "pension_death_stop") -> int:
    """RSJ's job, run to its end (the test client runs the background task at once)."""
    rows = payments() if rule == "pension_death_stop" else [{"id_number": pid(0)}]
    res = client.post(
        "/api/v1/verify/jobs",
        headers=world.headers("rsj_op"),
        data={"rule": rule, "params": ON},
        files={"file": ("payments.csv", csv_bytes(rows), "text/csv")},
    )
    assert res.status_code == 202, res.text
    job_id = int(res.json()["id"])
    job = client.get(f"/api/v1/verify/jobs/{job_id}", headers=world.headers("rsj_op")).json()
    assert job["status"] == "succeeded", job
    return job_id


def score(
    client: TestClient, world: World, job_id: int, body: bytes, name: str = "truth.csv", **kw: Any
) -> Any:
    return client.post(
        f"/api/v1/verify/jobs/{job_id}/score",
        headers=world.headers(kw.get("who", "rsj_op")),
        files={"truth": (name, body, "application/octet-stream")},
    )


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def test_an_operator_scores_its_own_job_from_csv_or_parquet_and_the_job_keeps_the_score(
    client: TestClient, world: World, session: Session
) -> None:
    job_id = run_job(client, world)
    for name, body in (("真实情况.csv", csv_bytes(TRUTH)), ("truth.parquet", parquet_bytes(TRUTH))):
        res = score(client, world, job_id, body, name)
        assert res.status_code == 200, res.text
        assert res.json() == {
            "job_id": job_id,
            "scenario": "pension_death_stop",
            "truth": "pensions",
            "list": "stop",
            **EXPECTED,
        }
    job = client.get(f"/api/v1/verify/jobs/{job_id}", headers=world.headers("rsj_client")).json()
    assert {k: job["score"][k] for k in EXPECTED} == EXPECTED
    # the API client of the same organisation may score it too; a score reads no source data,
    # so it is not in the ledger (as a download is not)
    assert score(client, world, job_id, csv_bytes(TRUTH), who="rsj_client").status_code == 200
    found = session.scalars(select(AuditEntry).where(AuditEntry.action == "verification.score"))
    assert list(found) == []


def test_scoring_is_refused_to_callers_outside_the_job_or_without_its_grants(
    client: TestClient, world: World, session: Session
) -> None:
    job_id = run_job(client, world)
    truth = csv_bytes(TRUTH)
    anonymous = client.post(
        f"/api/v1/verify/jobs/{job_id}/score", files={"truth": ("t.csv", truth, "text/csv")}
    )
    assert anonymous.status_code == 401
    other = score(client, world, job_id, truth, who="cl_op")
    assert other.status_code == 404
    assert other.json()["error"]["message"] == f"verification job {job_id} does not exist"
    # the platform admin sees every job but holds no verify grant to run this one
    admin = score(client, world, job_id, truth, who="platform")
    assert admin.status_code == 403
    assert "holds no verify grant for deaths" in admin.json()["error"]["message"]
    refused = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "verification.score")
    ).all()
    assert [(e.actor_name, e.outcome) for e in refused] == [("platform", "refused")]
    job = client.get(f"/api/v1/verify/jobs/{job_id}", headers=world.headers("rsj_op")).json()
    assert job["score"] is None


def test_a_rule_job_or_an_unfinished_job_is_not_scored(
    client: TestClient,
    world: World,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    rule_job = run_job(client, world, "alive")
    res = score(client, world, rule_job, csv_bytes(TRUTH))
    assert res.status_code == 409
    assert res.json()["error"]["message"] == (
        f"job {rule_job} runs rule alive; only scenario jobs are scored"
    )
    user = orgs_repo.user_by_username(session, "rsj_op")
    actor = principal_of_user(user) if user else None
    assert actor is not None
    with transaction(session_factory) as s:
        queued = jobs.create_job(
            s, actor=actor, settings=settings, name="pension_death_stop",
            params={"on": "2024-12-31"}, input_path=write_csv(tmp_path / "p.csv", payments()),
        ).id  # fmt: skip
    res = score(client, world, queued, csv_bytes(TRUTH))
    assert res.status_code == 409
    message = res.json()["error"]["message"]
    assert message == f"job {queued} is queued; it is scored once it succeeds"


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        (
            "truth.csv",
            csv_bytes([{"payment": "P000", "alive": False}]),
            "the truth lacks the column(s) pension_no; a ground truth for pension_death_stop "
            "has a row per pension_no and a column alive that is false where the row belongs "
            "on the stop list",
        ),
        (
            "truth.csv",
            csv_bytes([{"pension_no": "P000", "alive": "dead"}]),
            "the truth's alive column is not true/false (or 1/0) in every row",
        ),
        ("truth.parquet", b"not parquet", "truth.parquet is not a readable truth file"),
        ("truth.xlsx", b"PK\x03\x04", "upload the ground truth as a .csv or .parquet file"),
    ],
)
def test_a_truth_file_that_cannot_score_the_job_says_what_to_fix(
    client: TestClient, world: World, name: str, body: bytes, says: str
) -> None:
    job_id = run_job(client, world)
    res = score(client, world, job_id, body, name)
    assert res.status_code == 422, res.text
    assert res.json()["error"]["code"] == "invalid_input"
    assert says in res.json()["error"]["message"]
    job = client.get(f"/api/v1/verify/jobs/{job_id}", headers=world.headers("rsj_op")).json()
    assert job["score"] is None

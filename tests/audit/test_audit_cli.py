"""`haihe audit …` and `haihe users link-identity` as an operator runs them."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from audit_support import build_ledger, entry, sql
from sqlalchemy.orm import Session, sessionmaker

from factories import make_user
from haihe.audit import service, subject_sets
from haihe.cli import main
from haihe.core.auth import Role
from haihe.core.settings import Settings

Factory = sessionmaker[Session]


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["haihe", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch, session_factory: Factory) -> Factory:
    monkeypatch.setenv("HAIHE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HAIHE_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("HAIHE_SECRET_KEY", "test-secret-key-not-for-production")
    build_ledger(session_factory, 12)
    return session_factory


def test_verify_says_intact_then_where_it_was_tampered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Factory
) -> None:
    assert run(capsys, monkeypatch, "audit", "checkpoint")[0] == 0
    code, out, _ = run(capsys, monkeypatch, "audit", "verify")
    assert code == 0
    assert out.startswith(
        "intact: 12 entries in 1 chains (12 by their blocks' signed digests), 1 checkpoints"
    )
    sql(env, "UPDATE audit_entries SET purpose = '改' WHERE seq = 4")
    code, out, _ = run(capsys, monkeypatch, "audit", "verify")
    assert code == 1
    assert out.splitlines() == [
        "chain main seq 4: hash: the entry's content does not match its hash (the entry was edited)"
    ]


def test_checkpoint_says_what_it_sealed_and_what_it_would_not(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Factory
) -> None:
    code, out, _ = run(capsys, monkeypatch, "audit", "checkpoint")
    assert code == 0
    assert out.startswith("signed chain main: entries 1-12 sealed in 1 blocks (")
    assert run(capsys, monkeypatch, "audit", "checkpoint")[1] == (
        "no chain moved since its last checkpoint\n"
    )
    build_ledger(env, 4)
    sql(env, "UPDATE audit_entries SET purpose = '改' WHERE seq = 14")
    code, out, _ = run(capsys, monkeypatch, "audit", "checkpoint")
    assert code == 0
    assert out.startswith("signed chain main at 16 (")
    assert "its head only: the entries since its last checkpoint do not verify" in out


def test_verify_deep_compares_the_columns_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Factory
) -> None:
    code, out, _ = run(capsys, monkeypatch, "audit", "verify", "--deep", "--workers", "2")
    assert code == 0
    assert out.startswith("intact: 12 entries in 1 chains")
    assert out.rstrip().endswith("entries/s), columns compared")


def test_verify_deep_checks_each_batch_subject_set_against_its_digest(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: Factory,
    settings: Settings,
) -> None:
    people = [f"{i:032x}" for i in range(1, 6)]
    with env() as s:
        kept = subject_sets.keep_set(s, settings, people)
        service.record_many(s, [entry(1, subjects=(), subject_set=kept)])
        s.commit()
    subject_sets.index_pending(env, settings)
    assert run(capsys, monkeypatch, "audit", "verify", "--deep")[0] == 0
    sql(env, f"DELETE FROM audit_set_members WHERE token = '{people[2]}'")
    assert run(capsys, monkeypatch, "audit", "verify")[0] == 0  # the fast check reads no sets
    code, out, err = run(capsys, monkeypatch, "audit", "verify", "--deep")
    assert code == 1
    assert "members do not match the digest and size (5)" in out
    assert "TAMPERED: 1 problems" in err


def test_verify_with_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: Factory,
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    assert run(capsys, monkeypatch, "audit", "verify", "--chain", "nope")[0] == 2
    assert run(capsys, monkeypatch, "audit", "verify", "--public-key", str(junk))[0] == 2


def test_verify_with_the_printed_public_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: Factory,
    tmp_path: Path,
) -> None:
    code, pem, _ = run(capsys, monkeypatch, "audit", "keys")
    (tmp_path / "pub.pem").write_text(pem)
    run(capsys, monkeypatch, "audit", "checkpoint")
    code, out, _ = run(
        capsys, monkeypatch, "audit", "verify", "--public-key", str(tmp_path / "pub.pem")
    )
    assert "BEGIN PUBLIC KEY" in pem
    assert code == 0


def test_export_csv_and_jsonl(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: Factory,
    tmp_path: Path,
) -> None:
    target = tmp_path / "audit.csv"
    assert run(capsys, monkeypatch, "audit", "export", "-o", str(target))[0] == 0
    code, out, _ = run(capsys, monkeypatch, "audit", "export", "--format", "jsonl")
    assert target.read_bytes().startswith("\ufeffid,".encode())
    assert len(out.splitlines()) == 12


def test_list_stats_and_purge(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Factory
) -> None:
    listed = run(capsys, monkeypatch, "audit", "list", "--action", "exchange.", "--json")
    stats = run(capsys, monkeypatch, "audit", "stats", "--group-by", "org")
    purge = run(capsys, monkeypatch, "audit", "purge", "--dry-run")
    assert listed[0] == 0
    assert "sharing uses" in stats[1]
    assert purge[1].startswith("nothing to purge")


def test_link_identity(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Factory
) -> None:
    with env() as s:
        make_user(s, Role.RESIDENT, username="resident")
        s.commit()
    ok = run(capsys, monkeypatch, "users", "link-identity", "resident", "110105491231002")
    bad = run(capsys, monkeypatch, "users", "link-identity", "resident", "12345")
    assert ok[0] == 0
    assert "110105" not in ok[1]
    assert bad[0] == 2

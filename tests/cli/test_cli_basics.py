"""The `haihe` command: config, db, members, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from haihe.cli import main


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    """Run ``haihe ARGS`` in-process as the console script does; (exit code, stdout, stderr)."""
    import io

    monkeypatch.setattr(sys, "argv", ["haihe", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HAIHE_DATA_DIR", str(tmp_path / "d"))
    return tmp_path / "d"


def test_config_show_hides_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("HAIHE_SECRET_KEY", "very-secret-value")
    code, out, _ = run(capsys, monkeypatch, "config", "show", "--json")
    assert code == 0
    view = json.loads(out)
    assert view["data_dir"] == str(data_dir)
    assert view["secret_key"] == "***"
    assert "very-secret-value" not in out


def test_unknown_setting_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAIHE_DATA_DIRR", "x")
    code, out, err = run(capsys, monkeypatch, "config", "show")
    assert code == 2
    assert err.startswith("error: unknown setting HAIHE_DATA_DIRR")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_database_url_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("HAIHE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    code, _, err = run(capsys, monkeypatch, "db", "upgrade")
    assert code == 2
    assert err.startswith("error: cannot connect to database")
    assert err.count("\n") == 1


def test_members_from_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    assert run(capsys, monkeypatch, "db", "upgrade")[0] == 0
    ok = [
        ("orgs", "add", "TJ", "--name", "天津市", "--kind", "city", "--region", "120000"),
        (
            "orgs",
            "add",
            "GA",
            "--name",
            "市公安局",
            "--name-en",
            "Public Security Bureau",
            "--kind",
            "municipal_department",
            "--parent",
            "TJ",
        ),
        ("orgs", "systems", "add", "GA", "HJ", "--name", "户籍管理系统"),
    ]
    for args in ok:
        code, out, err = run(capsys, monkeypatch, *args)
        assert code == 0, err
    code, out, _ = run(capsys, monkeypatch, "orgs", "list", "--json")
    assert [o["code"] for o in json.loads(out)] == ["GA", "TJ"]
    code, out, err = run(
        capsys,
        monkeypatch,
        "users",
        "add",
        "zhang",
        "--name",
        "张三",
        "--org",
        "GA",
        "--role",
        "org_admin",
        stdin="long password\nlong password\n",
    )
    assert code == 0, err
    code, out, _ = run(
        capsys, monkeypatch, "clients", "add", "GA", "--name", "户籍接口", "--system", "HJ"
    )
    created = json.loads(out)
    assert created["client_id"].startswith("hh_ci_")
    assert created["client_secret"].startswith("hh_cs_")
    code, out, _ = run(capsys, monkeypatch, "clients", "list", "--json")
    assert created["client_secret"] not in out
    assert json.loads(out)[0]["system_code"] == "HJ"
    code, out, _ = run(capsys, monkeypatch, "orgs", "show", "GA")
    assert json.loads(out)["systems"][0]["name"] == "户籍管理系统"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("orgs", "add", "TJ", "--name", "天津市", "--kind", "city"),
            "error: organisation code 'TJ' already exists",
        ),
        (
            ("orgs", "add", "X1", "--name", "x", "--kind", "street", "--parent", "TJ"),
            "error: a street must have district as parent, not city",
        ),
        (
            ("orgs", "add", "E1", "--name", "x", "--kind", "enterprise", "--credit-code", "123"),
            "error: unified social credit code",
        ),
        (("orgs", "show", "NOPE"), "error: organisation 'NOPE' does not exist"),
        (
            ("orgs", "add", "bad code", "--name", "x", "--kind", "city"),
            "error: code: String should match pattern",
        ),
    ],
)
def test_bad_member_input(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    run(capsys, monkeypatch, "db", "upgrade")
    run(capsys, monkeypatch, "orgs", "add", "TJ", "--name", "天津市", "--kind", "city")
    code, _, err = run(capsys, monkeypatch, *args)
    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1


def test_console_script_exit_code_without_traceback(tmp_path: Path) -> None:
    """The installed entry point, in a real process: exit status 2 and one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "haihe", "orgs", "list"],
        env={"HAIHE_DATA_DIR": "/proc/no-such-dir", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: data directory /proc/no-such-dir cannot be created")
    assert "Traceback" not in proc.stderr


def test_id_check_normalises_and_explains(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, monkeypatch, "id", "check", "120101 900101 123", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["number"] == "120101199001011239"
    assert info["masked"] == "120101********1239"
    assert info["birth_date"] == "1990-01-01"
    assert info["sex"] == "M"
    assert info["legacy_input"] is True


def test_invalid_id_number_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "id", "check", "120101199001011234")
    assert code == 2
    assert err == (
        "error: ID number 120101199001011234: check character should be 9, not 4; "
        "re-enter the number from the card\n"
    )

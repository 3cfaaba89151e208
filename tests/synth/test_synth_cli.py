"""``haihe synth``: a summary on success; one ``error:`` line and exit status 2 on bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from haihe.synth.cli import app

runner = CliRunner()


def test_synth_writes_a_city_and_prints_the_summary(tmp_path):
    out = tmp_path / "city"
    result = runner.invoke(
        app,
        ["synth", "--persons", "600", "--seed", "3", "--out", str(out), "--as-of", "2026-06-30"],
    )
    assert result.exit_code == 0, result.output
    assert "GA.household_registration" in result.stdout
    assert "total" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["persons"] == 600
    assert manifest["as_of"] == "2026-06-30"


def test_non_empty_output_needs_force(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    args = ["synth", "--persons", "500", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: output directory")
    assert "--force" in result.stderr
    assert result.stderr.count("\n") == 1
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "manifest.json").exists()


def test_bad_persons_is_one_error_line(tmp_path):
    result = runner.invoke(app, ["synth", "--persons", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stderr == "error: persons must be between 200 and 50,000,000, not 0\n"
    assert "Traceback" not in result.output


def test_bad_date_is_one_error_line(tmp_path):
    result = runner.invoke(app, ["synth", "--as-of", "2026-02-30", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == "error: --as-of '2026-02-30' is not a date; use YYYY-MM-DD\n"


def test_unwritable_output_is_one_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["synth", "--persons", "500", "--out", str(blocker / "city")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot write to {blocker / 'city'}")
    assert result.stderr.count("\n") == 1

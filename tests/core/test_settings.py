"""Settings: sources, precedence, defaults, secrets and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from haihe.core.errors import ConfigError
from haihe.core.settings import Settings, load_settings


def test_defaults_put_everything_in_haihe_data() -> None:
    s = load_settings()
    assert s.data_dir == Path("haihe-data")
    assert s.resolved_database_url == f"sqlite:///{Path('haihe-data/haihe.db').resolve()}"


def test_environment_switches_to_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAIHE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/haihe")
    monkeypatch.setenv("HAIHE_PORT", "9000")
    s = load_settings()
    assert s.resolved_database_url == "postgresql+psycopg://postgres@127.0.0.1/haihe"
    assert s.port == 9000


def test_toml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "haihe.toml"
    cfg.write_text('data_dir = "/srv/haihe"\nport = 8100\ndefault_language = "en"\n')
    monkeypatch.setenv("HAIHE_PORT", "8200")
    s = load_settings(cfg)
    assert s.data_dir == Path("/srv/haihe")
    assert s.default_language == "en"
    assert s.port == 8200


def test_keyword_overrides_win_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAIHE_PORT", "8200")
    assert load_settings(port=8300).port == 8300


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("HAIHE_PROT", "8000", "unknown setting HAIHE_PROT"),
        ("HAIHE_PORT", "eighty", "setting port:"),
        ("HAIHE_PORT", "70000", "setting port:"),
        ("HAIHE_DATABASE_URL", "mysql://root@localhost/x", "must be sqlite"),
        ("HAIHE_DEFAULT_LANGUAGE", "fr", "setting default_language:"),
    ],
)
def test_bad_environment_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert message in err.value.message
    assert "\n" not in err.value.message


def test_bad_toml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(unknown)


def test_public_view_hides_secrets() -> None:
    s = Settings(
        secret_key="s3cret-value",
        database_url="postgresql+psycopg://haihe:pa55word@db.example/haihe",
    )
    view = s.public_view()
    text = repr(view)
    assert "s3cret-value" not in text
    assert "pa55word" not in text
    assert view["secret_key"] == "***"
    assert view["database_url"] == "postgresql+psycopg://haihe:***@db.example/haihe"


def test_every_setting_has_help_text() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_secret_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    key = s.secret_key_bytes()
    assert len(key) >= 32
    assert s.secret_key_bytes() == key
    assert (tmp_path / "d" / "secret.key").stat().st_mode & 0o077 == 0

"""Settings — every knob Haihe has, in one pydantic-settings class.

Sources, highest first: keyword arguments, ``HAIHE_*`` environment variables, a TOML file
(``--config FILE`` or ``HAIHE_CONFIG``), the defaults below. Nothing here is read at import time:
``load_settings()`` is called by the edges (CLI, server) and the result is passed down.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from haihe.core.errors import ConfigError

ENV_PREFIX = "HAIHE_"
CONFIG_ENV = "HAIHE_CONFIG"


class Settings(BaseSettings):
    """The effective configuration of one Haihe installation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    data_dir: Path = Field(
        Path("haihe-data"),
        description="Directory holding the data plane (Parquet versions), the embedded SQLite "
        "control database, secrets and job outputs.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the control database. Empty means SQLite at "
        "DATA_DIR/haihe.db; use postgresql+psycopg://user@host/db for production.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server listens on.")
    workers: int = Field(1, ge=1, le=64, description="HTTP worker processes for `haihe serve`.")
    public_url: str | None = Field(
        None,
        description="URL at which users reach this installation (for links in e-mails, DCAT "
        "and webhooks). Empty means http://HOST:PORT.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key for HMAC pseudonyms and signatures. Empty means a random key kept in "
        "DATA_DIR/secret.key (created on first use, readable by the owner only).",
    )
    token_ttl_seconds: int = Field(
        3600, ge=60, description="Lifetime of an API access token issued by /api/v1/auth/token."
    )
    session_ttl_seconds: int = Field(
        8 * 3600, ge=300, description="Lifetime of a console login session."
    )
    auth_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="Seconds each server process may reuse who a token stands for without asking "
        "the database. A revoked token, a disabled account or changed roles take effect in other "
        "processes within this time (at once in the process that made the change). 0 turns the "
        "cache off.",
    )
    default_language: Literal["zh", "en"] = Field(
        "zh", description="Console language for users who have not chosen one (zh or en)."
    )
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Data-plane engine that runs scans, rules and models."
    )
    duckdb_memory_limit: str = Field(
        "4GB", description="Memory DuckDB may use, in DuckDB's own notation (e.g. 4GB)."
    )
    duckdb_threads: int = Field(
        0, ge=0, description="Threads DuckDB may use; 0 means one per core."
    )
    spark_master: str = Field(
        "local[*]",
        description="Spark master URL for the spark engine (batch verification jobs with "
        "--engine spark): local[*] runs Spark in the process; spark://host:7077, yarn or "
        "k8s://… a city's cluster (the Parquet under DATA_DIR must be readable by its executors).",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Spark settings for the spark engine, a JSON object in the environment "
        '(e.g. {"spark.executor.memory": "8g", "spark.executor.instances": "10"}).',
    )
    audit_index_seconds: int = Field(
        60,
        ge=1,
        description="How often the persons a batch verification checked are moved from the "
        "job's subject-set files into the database index the citizen's view reads (it reads "
        "the files meanwhile).",
    )
    verification_stop_scan_seconds: int = Field(
        3600,
        ge=1,
        description="How often the daily pension stop looks for newly loaded death records; when "
        "the death sources have a new version it runs the pension_death_stop scenario.",
    )
    portal_sql_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Time limit of one datastore_search_sql statement on the open-data portal; "
        "DuckDB is interrupted when it runs longer.",
    )
    portal_sql_memory_limit: str = Field(
        "1GB", description="Memory one datastore_search_sql statement may use (DuckDB notation)."
    )
    portal_refresh_seconds: int = Field(
        300,
        ge=1,
        description="How often open datasets are compared with their resources' current versions "
        "and rewritten from each newly loaded version.",
    )
    source_database_hosts: list[str] = Field(
        default_factory=list,
        description="Database hosts that departments may load from through the REST API "
        '(a JSON list in the environment, e.g. ["db.internal"]). Empty turns REST loads from '
        "databases off; the CLI, run by the operator, may always load from a database URL.",
    )
    audit_chain: str = Field(
        "main",
        pattern=r"^[A-Za-z0-9_.-]{1,56}$",  # `haihe serve --workers` appends `.wN`
        description="Name of the audit hash chain this installation's processes append to. Give "
        "each gateway node its own (e.g. its host name) so appends never queue behind one writer; "
        "with several workers, `haihe serve` gives worker N the chain `<name>.wN`.",
    )
    audit_signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs audit checkpoints. Empty means "
        "DATA_DIR/audit-signing.key, created on first use and readable by the owner only.",
    )
    audit_checkpoint_every: int = Field(
        3600,
        ge=1,
        description="Seconds between signed checkpoints of every audit chain (the scheduler "
        "verifies the entries each chain gained and seals them in signed blocks this often; "
        "`haihe audit checkpoint` does it at once).",
    )
    audit_log_retention_days: int = Field(
        183,
        ge=183,
        description="Days audit entries are kept before `haihe audit purge` may remove them "
        "(at least 183, six months).",
    )
    audit_personal_retention_days: int = Field(
        1096,
        ge=1096,
        description="Days audit entries that record personal-information processing are kept "
        "(at least 1096, three years).",
    )
    jobs_enabled: bool = Field(
        True,
        description="Run periodic jobs (outbox delivery, grant expiry, overdue escalation, audit "
        "checkpoints, export clean-up, subscription scans) in a thread of each server process. "
        "Safe with several processes: each due job is claimed in the database and runs once. "
        "Off means they run only through `haihe jobs run` / `haihe jobs run-once` (e.g. one "
        "worker process beside app processes that only serve requests).",
    )
    jobs_tick_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often the scheduler looks for due jobs, in seconds."
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="Python modules of the city's own package imported at start-up (a JSON list "
        "in the environment). They register outbox channels and periodic jobs with the same calls "
        "the built-ins use (haihe.core.outbox.register_channel, haihe.core.jobs.register_task).",
    )
    outbox_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Attempts to deliver an outbox message (e.g. a webhook) before it becomes a "
        "dead letter, kept for `haihe jobs outbox redeliver`.",
    )
    outbox_retry_base_seconds: float = Field(
        30.0,
        gt=0,
        description="Wait after the first failed delivery; it doubles after each further "
        "failure, up to a day.",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Time a subscriber's webhook receiver has to answer."
    )
    subscription_scan_seconds: int = Field(
        60,
        ge=1,
        description="How often subscriptions are compared with their resources' current "
        "versions, to send a webhook event for each newly loaded version.",
    )
    export_ttl_days: int = Field(
        7,
        ge=1,
        le=366,
        description="Days a bulk export's file stays downloadable; afterwards it is removed.",
    )
    governance_photo_max_bytes: int = Field(
        5 * 1024 * 1024,
        ge=1024,
        description="Largest photo of a governance event accepted, in bytes (bigger: 422).",
    )
    governance_photos_per_event: int = Field(
        9, ge=1, le=50, description="Most photos one governance event may carry."
    )
    governance_remind_before_hours: float = Field(
        4.0,
        gt=0,
        description="Hours before an event's or a whistle's deadline when its unit is reminded.",
    )
    governance_supervise_after_hours: float = Field(
        24.0,
        gt=0,
        description="Hours past a deadline after which an overdue event or whistle is sent to "
        "the level above for supervision (督办).",
    )
    governance_deadline_scan_seconds: int = Field(
        300, ge=1, description="How often governance deadlines are scanned."
    )
    governance_snapshot_seconds: int = Field(
        600,
        ge=10,
        description="How often the governance statistics snapshot (Parquet under DATA_DIR) "
        "takes in the events written since; statistics read the rest from the database.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of log messages written."
    )
    sql_echo: bool = Field(False, description="Log every SQL statement (for debugging only).")

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB, "
                f"not {value.split('://', 1)[0]!r}"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # TOML comes from model_config["toml_file"], set by load_settings() on a subclass.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        """The control database URL, with the SQLite default filled in."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'haihe.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def secret_key_bytes(self) -> bytes:
        """The installation's secret key, creating DATA_DIR/secret.key on first use."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()

    def public_view(self) -> dict[str, Any]:
        """Effective settings as plain values, secrets replaced by '***' (for `config show`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        if self.database_url:
            out["database_url"] = _hide_password(self.database_url)
        out["database_url (effective)"] = _hide_password(self.resolved_database_url)
        return out


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the database layer, not here
        return url


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from overrides, HAIHE_* variables and an optional TOML file.

    Raises ConfigError with one line naming the problem: an unknown HAIHE_ variable or TOML key,
    a value of the wrong type, a missing or unreadable config file.
    """
    toml_path = config_file or (
        Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
    )
    settings_cls: type[Settings] = Settings
    if toml_path is not None:
        _check_toml(toml_path)

        class _FromFile(Settings):
            model_config = SettingsConfigDict(toml_file=toml_path)

        settings_cls = _FromFile
    unknown = sorted(
        key
        for key in os.environ
        if key.startswith(ENV_PREFIX)
        and key != CONFIG_ENV
        and key[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    )
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]} (known: "
            + ", ".join(ENV_PREFIX + n.upper() for n in Settings.model_fields)
            + ")"
        )
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(f"setting {where}: {err['msg']}") from None


def _check_toml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")

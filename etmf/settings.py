"""One typed settings object for the whole server.

Defaults live in :class:`Settings`; an optional ``settings.toml`` in the instance folder
overrides them, and ``ETMF_<NAME>`` environment variables override both. Everything is
validated at start-up: a wrong value stops the server with one sentence that names the
setting and what it accepts. Nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from etmf.errors import SettingsError

ENV_PREFIX = "ETMF_"
SETTINGS_FILE = "settings.toml"

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
STORAGE_BACKENDS = ("local", "s3")
SEARCH_BACKENDS = ("whoosh", "postgres")
MAIL_BACKENDS = ("log", "smtp")
JOBS_RUNNERS = ("thread", "worker", "inline")
OBJECT_LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")
LOG_FORMATS = ("text", "json")
SIGNING_KEYSTORES = ("file", "pkcs11")
TIMESTAMPED_LEVELS = ("B-T", "B-LT", "B-LTA")


@dataclass(frozen=True)
class Settings:
    """Every setting of the server. Field names map to ``ETMF_<UPPER_NAME>``."""

    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    #: SQLAlchemy URL; empty means the SQLite file ``etmf.db`` in the instance folder.
    database_url: str = ""
    #: PostgreSQL schema to use (search_path); empty means the server's default.
    database_schema: str = ""
    secret_key: str = ""
    #: Separate salt for password-related tokens (Flask-Security-Too).
    password_salt: str = ""
    storage_backend: str = "local"
    #: Folder of the local blob store; empty means ``blobs/`` in the instance folder.
    storage_path: str = ""
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    object_lock_mode: str = "COMPLIANCE"
    retention_years: int = 25
    search_backend: str = "whoosh"
    #: Maximum size of one uploaded file, in megabytes.
    max_upload_mb: int = 512
    session_timeout_minutes: int = 15
    lockout_attempts: int = 5
    password_min_length: int = 12
    #: Roles whose members must enrol a TOTP second factor.
    totp_required_roles: tuple[str, ...] = ("investigator", "qc_reviewer", "study_manager")
    #: Off in the embedded default so the demo can be tried at once; on in production.
    require_totp: bool = False
    mail_backend: str = "log"
    mail_from: str = "etmf@localhost"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    tsa_url: str = ""
    #: PAdES level when a TSA is configured: B-T, B-LT or B-LTA (without one: always B-B).
    signature_level: str = "B-LTA"
    #: PEM file with the TSA's root certificate(s), trusted when validating time-stamps.
    tsa_root_cert: str = ""
    #: Where users' signing keys live: "file" (encrypted in the instance folder) or "pkcs11".
    signing_keystore: str = "file"
    pkcs11_module: str = ""
    pkcs11_token: str = ""
    pkcs11_pin: str = ""
    #: Signature request reminders: days before the due date (negative: days overdue) at
    #: which a pending signer is reminded, once per threshold.
    signature_reminder_days: tuple[str, ...] = ("2", "0", "-1", "-7")
    log_level: str = "INFO"
    log_format: str = "text"
    #: Number of proxies in front of the server whose X-Forwarded-* headers are trusted.
    trusted_proxies: int = 0
    server_name_for_mail: str = "http://127.0.0.1:5000"
    #: Where background jobs run: "thread" (inside the app process: the embedded default),
    #: "worker" (the app only queues; `etmf worker` processes run them) or "inline" (in the
    #: submitting thread: tests and the command line).
    jobs_runner: str = "thread"
    #: Redis URL (redis://host:6379/0): wakes `etmf worker` processes as soon as work is
    #: queued. Optional: without it workers poll the database every few seconds.
    redis_url: str = ""
    #: Addresses (or networks, CIDR) of the reverse proxies whose X-Forwarded-* headers are
    #: believed; a request from anywhere else keeps its real address. Used only when
    #: trusted_proxies > 0.
    trusted_proxy_addresses: tuple[str, ...] = ("127.0.0.1", "::1")
    #: Mark cookies Secure and send HSTS: on whenever users reach the server over HTTPS.
    secure_cookies: bool = False
    #: TMF zone the validation report is filed into: "10" (10.04.03 Validation
    #: Documentation) or "01" (01.01.20 Operational Oversight).
    validation_zone: str = "10"
    #: TOML file describing the single sign-on identity providers (OpenID Connect); empty
    #: means ``oidc_providers.toml`` in the instance folder, when it exists.
    oidc_providers_file: str = ""
    testing: bool = False

    # ---- derived values -------------------------------------------------------------
    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_path / 'etmf.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def blob_path(self) -> Path:
        return Path(self.storage_path) if self.storage_path else self.instance_path / "blobs"

    @property
    def search_path(self) -> Path:
        return self.instance_path / "search"

    @property
    def keys_path(self) -> Path:
        return self.instance_path / "keys"

    @property
    def signing_ca_path(self) -> Path:
        return self.keys_path / "signing-ca"

    @property
    def user_keys_path(self) -> Path:
        return self.keys_path / "signing-users"

    def masked(self) -> dict[str, str]:
        """Settings as strings with secrets masked, for `etmf check` and reports."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                out[f.name] = "********"
            elif f.name == "database_url" and value:
                out[f.name] = _mask_url_password(value)
            else:
                out[f.name] = str(value)
        return out

    def replace(self, **changes: Any) -> Settings:
        return load_settings(overrides={**dataclasses.asdict(self), **changes}, environ={})


_SECRET_FIELDS = {"secret_key", "password_salt", "s3_secret_key", "pkcs11_pin"}


def _mask_url_password(url: str) -> str:
    head, sep, tail = url.partition("://")
    if "@" not in tail or ":" not in tail.split("@", 1)[0]:
        return url
    creds, host = tail.split("@", 1)
    user = creds.split(":", 1)[0]
    return f"{head}{sep}{user}:****@{host}"


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Turn a raw value (string from the environment, or TOML value) into the field's type."""
    if kind is Path:
        return Path(str(raw)).expanduser().resolve()
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be true or false, not {raw!r}.")
    if kind is int:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()} must be a whole number, not {raw!r}."
            ) from None
    if kind == tuple[str, ...]:
        if isinstance(raw, (list, tuple)):
            return tuple(str(x) for x in raw)
        return tuple(part.strip() for part in str(raw).split(",") if part.strip())
    return str(raw)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate the settings.

    Precedence, lowest first: defaults, ``settings.toml`` in the instance folder,
    ``ETMF_*`` environment variables, then ``overrides`` (used by tests and the CLI).
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    hints = get_type_hints(Settings)
    names = {f.name for f in fields(Settings)}

    raw: dict[str, Any] = {}
    env_values: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in names:
            env_values[name] = value
        elif name not in _IGNORED_ENV:
            raise SettingsError(
                f"{key} is not a setting of this server; "
                f"known settings are {', '.join(ENV_PREFIX + n.upper() for n in sorted(names))}."
            )

    instance = overrides.get("instance_path") or env_values.get("instance_path") or "instance"
    instance_path = Path(str(instance)).expanduser().resolve()
    settings_file = instance_path / SETTINGS_FILE
    if settings_file.is_file():
        try:
            file_values = tomllib.loads(settings_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{settings_file} is not valid TOML: {exc}.") from None
        for name, value in file_values.items():
            if name not in names:
                raise SettingsError(f"{settings_file}: {name!r} is not a setting of this server.")
            raw[name] = value
    raw.update(env_values)
    raw.update(overrides)
    raw["instance_path"] = instance_path

    values = {name: _coerce(name, value, hints[name]) for name, value in raw.items()}
    settings = Settings(**values)
    _validate(settings)
    return settings


# Variables that share our prefix but are read by the test harness, not the server.
_IGNORED_ENV = {"test_database_url", "test_browser", "demo_password"}


def _validate(s: Settings) -> None:
    url = s.sqlalchemy_url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise SettingsError(
            f"ETMF_DATABASE_URL {url!r} is not a supported database URL; use "
            "sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/dbname."
        )
    _one_of("storage_backend", s.storage_backend, STORAGE_BACKENDS)
    _one_of("search_backend", s.search_backend, SEARCH_BACKENDS)
    _one_of("mail_backend", s.mail_backend, MAIL_BACKENDS)
    _one_of("jobs_runner", s.jobs_runner, JOBS_RUNNERS)
    for address in s.trusted_proxy_addresses:
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise SettingsError(
                f"ETMF_TRUSTED_PROXY_ADDRESSES: {address!r} is not an IP address or network."
            ) from None
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("ETMF_REDIS_URL must start with redis://, rediss:// or unix://.")
    _one_of("object_lock_mode", s.object_lock_mode, OBJECT_LOCK_MODES)
    _one_of("log_format", s.log_format, LOG_FORMATS)
    _one_of("log_level", s.log_level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR"))
    _one_of("signing_keystore", s.signing_keystore, SIGNING_KEYSTORES)
    _one_of("signature_level", s.signature_level, TIMESTAMPED_LEVELS)
    _one_of("validation_zone", s.validation_zone, ("10", "01"))
    if s.signing_keystore == "pkcs11" and not (s.pkcs11_module and s.pkcs11_token):
        raise SettingsError("ETMF_PKCS11_MODULE and ETMF_PKCS11_TOKEN must be set when "
                            "ETMF_SIGNING_KEYSTORE is pkcs11.")
    if s.storage_backend == "s3" and not s.s3_bucket:
        raise SettingsError("ETMF_S3_BUCKET must be set when ETMF_STORAGE_BACKEND is s3.")
    if s.search_backend == "postgres" and scheme == "sqlite":
        raise SettingsError(
            "ETMF_SEARCH_BACKEND=postgres needs a PostgreSQL ETMF_DATABASE_URL; "
            "use whoosh with SQLite."
        )
    for name, low, high in (
        ("max_upload_mb", 1, 1_000_000),
        ("session_timeout_minutes", 1, 24 * 60),
        ("lockout_attempts", 1, 100),
        ("password_min_length", 8, 256),
        ("retention_years", 1, 100),
        ("trusted_proxies", 0, 10),
    ):
        value = getattr(s, name)
        if not low <= value <= high:
            raise SettingsError(
                f"ETMF_{name.upper()} must be between {low} and {high}, not {value}."
            )


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(
            f"ETMF_{name.upper()} {value!r} is not allowed; use one of: {', '.join(allowed)}."
        )


def ensure_secret_key(settings: Settings) -> Settings:
    """Give the instance a persistent random secret key when none is configured.

    The key is kept in ``instance/secret_key`` (mode 0600) so sessions survive restarts.
    """
    if settings.secret_key and settings.password_salt:
        return settings
    path = settings.instance_path / "secret_key"
    if not path.exists():
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n" + secrets.token_urlsafe(24) + "\n")
    key, salt = (path.read_text().split() + ["", ""])[:2]
    return dataclasses.replace(
        settings,
        secret_key=settings.secret_key or key,
        password_salt=settings.password_salt or salt,
    )

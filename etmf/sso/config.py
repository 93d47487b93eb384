"""Identity provider configuration: a TOML file in the instance folder.

``oidc_providers.toml`` (or the file named by ``ETMF_OIDC_PROVIDERS_FILE``) lists one
``[[provider]]`` table per identity provider::

    [[provider]]
    name = "hospital"                 # in URLs: /sso/hospital/login
    label = "Hospital account"        # on the button: "Sign in with Hospital account"
    issuer = "https://login.hospital.example"
    client_id = "etmf"
    client_secret = "…"
    scopes = ["openid", "email", "profile", "groups"]
    allowed_domains = ["hospital.example"]
    provisioning = "jit"              # "jit": create accounts; "existing": only link them
    local_passwords = false           # false: these domains cannot sign in with a password
    groups_claim = "groups"
    reauth_max_age_seconds = 120      # how fresh auth_time must be to sign

    [[provider.role_mapping]]
    group = "etmf:TST-001:investigator"
    study = "TST-001"                 # protocol number
    role = "investigator"
    site = "101"                      # optional

Read once per app and validated with a message naming the provider and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etmf.errors import SettingsError

PROVIDERS_FILE = "oidc_providers.toml"
PROVISIONING = ("jit", "existing")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class RoleMapping:
    """Members of ``group`` (a value of the groups claim) get ``role`` in ``study``."""

    group: str
    study: str
    role: str
    site: str | None = None


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    label: str
    issuer: str
    client_id: str
    client_secret: str = ""
    kind: str = "oidc"
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    allowed_domains: tuple[str, ...] = ()
    provisioning: str = "jit"
    local_passwords: bool = True
    groups_claim: str = "groups"
    reauth_max_age_seconds: int = 120
    #: Seconds of clock difference tolerated between us and the provider.
    leeway_seconds: int = 30
    role_mapping: tuple[RoleMapping, ...] = field(default_factory=tuple)

    def allows_email(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1].lower()
        return not self.allowed_domains or domain in self.allowed_domains


def providers_path(instance_path: Path, configured: str) -> Path:
    return Path(configured) if configured else instance_path / PROVIDERS_FILE


def load_providers(path: Path) -> tuple[ProviderConfig, ...]:
    """The providers in ``path``; none when the file does not exist."""
    if not path.is_file():
        return ()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}.") from None
    found = tuple(_provider(path, n, table) for n, table in enumerate(raw.get("provider", [])))
    names = [p.name for p in found]
    if len(set(names)) != len(names):
        raise SettingsError(f"{path}: two providers have the same name.")
    return found


def _provider(path: Path, index: int, table: dict[str, Any]) -> ProviderConfig:
    where = f"{path}, provider {table.get('name', index + 1)!s}"
    known = {f for f in ProviderConfig.__dataclass_fields__}
    unknown = set(table) - known
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
    for key in ("name", "issuer", "client_id"):
        if not str(table.get(key, "")).strip():
            raise SettingsError(f"{where}: {key!r} is required.")
    if not _NAME.match(str(table["name"])):
        raise SettingsError(f"{where}: the name must be lower-case letters, digits and '-'.")
    if table.get("kind", "oidc") != "oidc":
        raise SettingsError(f"{where}: kind {table['kind']!r} is not supported; use 'oidc'.")
    if table.get("provisioning", "jit") not in PROVISIONING:
        raise SettingsError(f"{where}: provisioning must be one of {', '.join(PROVISIONING)}.")
    if not str(table["issuer"]).startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SettingsError(f"{where}: the issuer must be an https:// URL.")
    mappings = []
    for m in table.get("role_mapping", []):
        if not {"group", "study", "role"} <= set(m):
            raise SettingsError(f"{where}: each role_mapping needs group, study and role.")
        mappings.append(RoleMapping(group=str(m["group"]), study=str(m["study"]),
                                    role=str(m["role"]),
                                    site=str(m["site"]) if m.get("site") else None))
    scopes = tuple(str(s) for s in table.get("scopes", ("openid", "email", "profile")))
    if "openid" not in scopes:
        raise SettingsError(f"{where}: scopes must include 'openid'.")
    max_age = int(table.get("reauth_max_age_seconds", 120))
    if not 10 <= max_age <= 900:
        raise SettingsError(f"{where}: reauth_max_age_seconds must be between 10 and 900.")
    return ProviderConfig(
        name=str(table["name"]), label=str(table.get("label") or table["name"]),
        issuer=str(table["issuer"]).rstrip("/"), client_id=str(table["client_id"]),
        client_secret=str(table.get("client_secret", "")), scopes=scopes,
        allowed_domains=tuple(str(d).lower() for d in table.get("allowed_domains", ())),
        provisioning=str(table.get("provisioning", "jit")),
        local_passwords=bool(table.get("local_passwords", True)),
        groups_claim=str(table.get("groups_claim", "groups")),
        reauth_max_age_seconds=max_age,
        leeway_seconds=int(table.get("leeway_seconds", 30)),
        role_mapping=tuple(mappings))

"""Audit events told in words: who did what, when, old → new (AUD-4, AUD-7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from etmf.audit.models import Event

ACTION_LABELS = {
    "user.created": "Account created",
    "user.login": "Signed in",
    "user.logout": "Signed out",
    "user.login_failed": "Failed sign-in",
    "user.totp_used": "Authenticator code used",
    "user.password_changed": "Password changed",
    "user.second_factor_changed": "Second factor changed",
    "user.deactivated": "Account deactivated",
    "user.reactivated": "Account reactivated",
    "user.unlocked": "Account unlocked",
    "user.global_roles_changed": "Global roles changed",
    "membership.granted": "Study role granted",
    "membership.revoked": "Study role revoked",
    "study.created": "Study created",
    "country.added": "Country added",
    "site.added": "Site added",
    "document.filed": "Document filed",
    "document.version_added": "New version uploaded",
    "document.transitioned": "Status changed",
    "document.metadata_changed": "Metadata changed",
    "document.imported": "Document imported (EMS)",
    "exchange.package_imported": "EMS package imported",
    "inspection.request_raised": "Inspection request raised",
    "inspection.request_answered": "Inspection request answered",
    "study.locked": "Study locked (TMF closed)",
    "study.unlocked": "Study unlocked",
}


@dataclass(frozen=True)
class EventView:
    seq: int
    when: datetime
    actor: str
    action: str
    object: str
    changes: list[tuple[str, str, str]]
    reason: str | None
    client_addr: str | None


def _text(value: object) -> str:
    if value is None or value == "":
        return "—"
    return str(value)


def describe_event(event: Event) -> EventView:
    data = json.loads(event.payload)
    changes: list[tuple[str, str, str]] = []
    if event.type == "document.metadata_changed":
        changes = [(f.replace("_", " "), _text(old), _text(new))
                   for f, (old, new) in sorted(data["changes"].items())]
    elif event.type == "document.transitioned":
        changes = [("status (version id {})".format(data["version_id"]), _text(data["from"]),
                    _text(data["to"]))]
    elif event.type == "user.global_roles_changed":
        old, new = data["roles"]
        changes = [("global roles", ", ".join(old) or "—", ", ".join(new) or "—")]
    else:
        flat = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
        if "version" in data and isinstance(data["version"], dict):
            v = data["version"]
            flat.update({"version": v.get("label"), "file": v.get("filename"),
                         "sha256": v.get("sha256")})
        changes = [(k.replace("_", " "), "—", _text(v)) for k, v in sorted(flat.items())]
    return EventView(
        seq=event.seq, when=event.occurred_at, actor=event.actor_name,
        action=ACTION_LABELS.get(event.type, event.type),
        object=f"{event.stream_type} {event.stream_id} v{event.stream_version}",
        changes=changes, reason=event.reason, client_addr=event.client_addr,
    )

"""Study commands: create a study and its countries and sites (the filing context)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.audit.store import UnitOfWork
from etmf.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Country, Site, Study

PHASES = ("I", "II", "III", "IV", "I/II", "II/III")
SITE_STATUSES = ("feasibility", "selection", "initiation", "active", "closed")


@dataclass(frozen=True)
class NewStudy:
    protocol_number: str
    title: str
    phase: str
    sponsor: str
    therapeutic_area: str | None = None


def create_study(uow: UnitOfWork, cmd: NewStudy) -> int:
    protocol = cmd.protocol_number.strip()
    if not protocol or not cmd.title.strip():
        raise ValidationError("A study needs a protocol number and a title.")
    if cmd.phase not in PHASES:
        raise ValidationError(f"Phase {cmd.phase!r} is not one of {', '.join(PHASES)}.")
    if uow.session.scalar(select(Study.id).where(Study.protocol_number == protocol)):
        raise Conflict(f"A study with protocol number {protocol} exists.")
    study_id = uow.allocate_id(Study)
    uow.emit(
        "study", study_id, "study.created",
        {"protocol_number": protocol, "title": cmd.title.strip(), "phase": cmd.phase,
         "sponsor": cmd.sponsor.strip(), "therapeutic_area": cmd.therapeutic_area,
         "status": "active", "tmf_model_version": "3.3.1"},
        expected_version=0, study_id=study_id,
    )
    return study_id


def add_country(uow: UnitOfWork, *, study_id: int, code: str, name: str) -> int:
    code = code.strip().upper()
    if len(code) != 2 or not code.isalpha():
        raise ValidationError(f"{code!r} is not a two-letter ISO country code.")
    if uow.session.get(Study, study_id) is None:
        raise NotFound("There is no such study.")
    exists = uow.session.scalar(
        select(Country.id).where(Country.study_id == study_id, Country.code == code)
    )
    if exists:
        raise Conflict(f"Country {code} is already part of this study.")
    country_id = uow.allocate_id(Country)
    uow.emit("country", country_id, "country.added",
             {"study_id": study_id, "code": code, "name": name.strip()},
             expected_version=0, study_id=study_id)
    return country_id


def add_site(
    uow: UnitOfWork, *, study_id: int, country_id: int, number: str, institution: str,
    principal_investigator: str | None = None, status: str = "selection",
) -> int:
    country = uow.session.get(Country, country_id)
    if country is None or country.study_id != study_id:
        raise NotFound("There is no such country in this study.")
    if status not in SITE_STATUSES:
        raise ValidationError(f"Site status {status!r} is not one of {', '.join(SITE_STATUSES)}.")
    exists = uow.session.scalar(
        select(Site.id).where(Site.study_id == study_id, Site.number == number)
    )
    if exists:
        raise Conflict(f"Site {number} already exists in this study.")
    site_id = uow.allocate_id(Site)
    uow.emit("site", site_id, "site.added",
             {"study_id": study_id, "country_id": country_id, "number": number,
              "institution": institution, "principal_investigator": principal_investigator,
              "status": status},
             expected_version=0, study_id=study_id)
    return site_id


def _study_for_admin(uow: UnitOfWork, access: Access, study_id: int) -> Study:
    if not access.is_admin:
        raise Forbidden("Only an administrator can lock or unlock a study.")
    study = uow.session.get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study.")
    return study


def lock_study(uow: UnitOfWork, access: Access, study_id: int, *, reason: str | None,
               expected_version: int) -> None:
    """Archive a study: every document becomes read-only until it is unlocked (REC-3)."""
    study = _study_for_admin(uow, access, study_id)
    if study.locked_at is not None:
        raise InvalidTransition(f"Study {study.protocol_number} is already locked.")
    uow.emit("study", study_id, "study.locked", {"protocol_number": study.protocol_number},
             expected_version=expected_version, study_id=study_id, reason=reason,
             reason_required=True)


def unlock_study(uow: UnitOfWork, access: Access, study_id: int, *, reason: str | None,
                 expected_version: int) -> None:
    """Make a locked study editable again; the reason is kept in the audit trail."""
    study = _study_for_admin(uow, access, study_id)
    if study.locked_at is None:
        raise InvalidTransition(f"Study {study.protocol_number} is not locked.")
    uow.emit("study", study_id, "study.unlocked", {"protocol_number": study.protocol_number},
             expected_version=expected_version, study_id=study_id, reason=reason,
             reason_required=True)

"""Tracking commands: generate and edit the EDL, milestone dates, targets, expiry rules,
people, placeholders from the EDL (and filling them when a matching document is filed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents.lifecycle import PLACEHOLDER
from etmf.documents.models import Document
from etmf.errors import Conflict, NotFound, ValidationError
from etmf.reference_model.model import (
    FilingLevel,
    UnknownArtifact,
    UnknownMilestone,
    load_reference_model,
)
from etmf.studies.models import Country, Site, Study
from etmf.tracking.models import (
    EdlEntry,
    ExpiryRule,
    MilestoneDate,
    Person,
    PersonDocument,
    PersonSite,
    TrackingTargets,
)

DEFAULT_FILING_DAYS = 30
DEFAULT_APPROVAL_DAYS = 14
DEFAULT_EXPIRY_REMINDERS = "90,60,30,0"
DEFAULT_MILESTONE_REMINDERS = "30,7,0"
#: Who gets reminders unless the study says otherwise: the study's managers and TMF
#: specialists, and the site staff of the document's or milestone's site.
DEFAULT_REMINDER_ROLES = "study_manager,tmf_specialist,site_staff"
MAX_REQUIRED = 100


def _study(uow: UnitOfWork, study_id: int) -> Study:
    study = uow.session.get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study.")
    return study


def _artifact(key: str):  # type: ignore[no-untyped-def]
    model = load_reference_model()
    try:
        return model.artifact(key)
    except UnknownArtifact:
        try:
            return model.artifact_by_number(key)
        except UnknownArtifact:
            raise ValidationError(f"{key!r} is not an artifact of the TMF Reference Model "
                                  f"{model.version}.") from None


def _milestone(code: str | None) -> str | None:
    if code is None or not str(code).strip():
        return None
    try:
        return load_reference_model().milestone(str(code)).code
    except UnknownMilestone:
        raise ValidationError(f"{code!r} is not a milestone of the TMF Reference Model.") from None


@dataclass(frozen=True)
class Scope:
    """Where an expectation applies: the trial, one country or one site of a study."""

    level: str
    country_id: int | None = None
    site_id: int | None = None


def _check_scope(uow: UnitOfWork, study_id: int, scope: Scope) -> Scope:
    if scope.level == "site":
        site = uow.session.get(Site, scope.site_id) if scope.site_id else None
        if site is None or site.study_id != study_id:
            raise ValidationError("Choose a site of this study.")
        return Scope("site", site.country_id, site.id)
    if scope.level == "country":
        country = uow.session.get(Country, scope.country_id) if scope.country_id else None
        if country is None or country.study_id != study_id:
            raise ValidationError("Choose a country of this study.")
        return Scope("country", country.id, None)
    if scope.level != "trial":
        raise ValidationError(f"Level {scope.level!r} is not trial, country or site.")
    return Scope("trial")


def _entry_payload(uow: UnitOfWork, scope: Scope, artifact, required: int,  # type: ignore[no-untyped-def]
                   milestone: str | None) -> dict[str, object]:
    return {"id": uow.allocate_id(EdlEntry), "level": scope.level,
            "country_id": scope.country_id, "site_id": scope.site_id,
            "artifact_id": artifact.unique_id, "zone": artifact.zone_number,
            "required_count": required, "milestone": milestone}


def generate_edl(uow: UnitOfWork, access: Access, study_id: int, *,
                 include_recommended: bool = False) -> int:
    """Expected documents from the Reference Model for every place of the study that has none
    yet: core artifacts (and recommended ones if asked) at each level the model files them.

    Idempotent: a place that already has entries is left alone (edits are kept), so running it
    again after adding a site only fills the new site. Returns the number of entries added.
    """
    access.require(Permission.MANAGE_STUDY, study_id)
    study = _study(uow, study_id)
    model = load_reference_model(study.tmf_model_version)
    artifacts = [a for a in model.artifacts if a.core or include_recommended]
    have = {(lvl, c, s) for lvl, c, s in uow.session.execute(
        select(EdlEntry.level, EdlEntry.country_id, EdlEntry.site_id)
        .where(EdlEntry.study_id == study_id).distinct())}
    scopes = [Scope("trial")]
    scopes += [Scope("country", c.id) for c in uow.session.scalars(
        select(Country).where(Country.study_id == study_id).order_by(Country.id))]
    scopes += [Scope("site", s.country_id, s.id) for s in uow.session.scalars(
        select(Site).where(Site.study_id == study_id).order_by(Site.id))]
    added = 0
    for scope in scopes:
        if (scope.level, scope.country_id, scope.site_id) in have:
            continue
        level = FilingLevel(scope.level)
        entries = [_entry_payload(uow, scope, a, 1, a.site_milestone_code)
                   for a in artifacts if level in model.levels_of(a)]
        if entries:
            uow.emit("edl", study_id, "edl.entries_added",
                     {"entries": entries, "generated": True}, study_id=study_id)
            added += len(entries)
    return added


def add_entry(uow: UnitOfWork, access: Access, study_id: int, scope: Scope, artifact: str, *,
              required_count: int = 1, milestone: str | None = None) -> int:
    """Expect one more artifact at a place (the trial, a country or a site)."""
    access.require(Permission.MANAGE_STUDY, study_id)
    _study(uow, study_id)
    scope = _check_scope(uow, study_id, scope)
    found = _artifact(artifact)
    _check_required(required_count)
    exists = uow.session.scalar(select(EdlEntry.id).where(
        EdlEntry.study_id == study_id, EdlEntry.level == scope.level,
        EdlEntry.country_id.is_(None) if scope.country_id is None
        else EdlEntry.country_id == scope.country_id,
        EdlEntry.site_id.is_(None) if scope.site_id is None else EdlEntry.site_id == scope.site_id,
        EdlEntry.artifact_id == found.unique_id))
    if exists:
        raise Conflict(f"{found.label} is already expected there; change its required count.")
    payload = _entry_payload(uow, scope, found, required_count, _milestone(milestone))
    uow.emit("edl", study_id, "edl.entries_added", {"entries": [payload], "generated": False},
             study_id=study_id)
    return int(payload["id"])  # type: ignore[call-overload]


def _check_required(n: int) -> None:
    if not 1 <= n <= MAX_REQUIRED:
        raise ValidationError(f"The required count must be between 1 and {MAX_REQUIRED}.")


def _entry(uow: UnitOfWork, access: Access, entry_id: int) -> EdlEntry:
    entry = uow.session.get(EdlEntry, entry_id)
    if entry is None:
        raise NotFound("There is no such expected document.")
    access.require(Permission.MANAGE_STUDY, entry.study_id)
    return entry


def change_entry(uow: UnitOfWork, access: Access, entry_id: int, *,
                 required_count: int | None = None, milestone: str | None = None,
                 reason: str | None = None) -> None:
    """Change how many documents are required and by which milestone."""
    entry = _entry(uow, access, entry_id)
    changes: dict[str, list[object]] = {}
    if required_count is not None and required_count != entry.required_count:
        _check_required(required_count)
        changes["required_count"] = [entry.required_count, required_count]
    if milestone is not None:
        code = _milestone(milestone)
        if code != entry.milestone:
            changes["milestone"] = [entry.milestone, code]
    if changes:
        uow.emit("edl", entry.study_id, "edl.entry_changed",
                 {"entry_id": entry.id, "artifact_id": entry.artifact_id, "changes": changes},
                 study_id=entry.study_id, reason=reason)


def remove_entry(uow: UnitOfWork, access: Access, entry_id: int, *, reason: str | None) -> None:
    """No longer expect this artifact there (a reason is required: it changes the figures)."""
    entry = _entry(uow, access, entry_id)
    uow.emit("edl", entry.study_id, "edl.entry_removed",
             {"entry_id": entry.id, "artifact_id": entry.artifact_id, "level": entry.level,
              "country_id": entry.country_id, "site_id": entry.site_id},
             study_id=entry.study_id, reason=reason, reason_required=True)


def set_milestone_dates(uow: UnitOfWork, access: Access, study_id: int, scope: Scope,
                        code: str, *, planned: date | None, actual: date | None) -> None:
    """Planned and actual date of a milestone for the study, a country or a site."""
    access.require(Permission.MANAGE_STUDY, study_id)
    _study(uow, study_id)
    scope = _check_scope(uow, study_id, scope)
    milestone = _milestone(code)
    if milestone is None:
        raise ValidationError("Choose a milestone.")
    if actual is not None and actual > uow.now.date():
        raise ValidationError("An actual date cannot be in the future; give a planned date.")
    site_id = scope.site_id if scope.level == "site" else None
    country_id = scope.country_id if scope.level == "country" else None
    row = uow.session.scalar(select(MilestoneDate).where(
        MilestoneDate.study_id == study_id, MilestoneDate.code == milestone,
        MilestoneDate.site_id.is_(None) if site_id is None else MilestoneDate.site_id == site_id,
        MilestoneDate.country_id.is_(None) if country_id is None
        else MilestoneDate.country_id == country_id))
    old_p = row.planned.isoformat() if row and row.planned else None
    old_a = row.actual.isoformat() if row and row.actual else None
    new_p = planned.isoformat() if planned else None
    new_a = actual.isoformat() if actual else None
    if row is not None and (old_p, old_a) == (new_p, new_a):
        return
    uow.emit("milestones", study_id, "milestone.dates_set",
             {"id": row.id if row else uow.allocate_id(MilestoneDate), "code": milestone,
              "country_id": country_id, "site_id": site_id,
              "planned": [old_p, new_p], "actual": [old_a, new_a]}, study_id=study_id)


def _thresholds(text: str) -> str:
    try:
        days = sorted({int(p) for p in text.replace(" ", "").split(",") if p}, reverse=True)
    except ValueError:
        raise ValidationError("Reminder thresholds are whole numbers of days before the date, "
                              "separated by commas (e.g. 90,60,30,0).") from None
    if not days or any(d < 0 or d > 3650 for d in days):
        raise ValidationError("Give at least one reminder threshold between 0 and 3650 days.")
    return ",".join(str(d) for d in days)


def _roles(value: str | list[str]) -> str:
    from etmf.accounts.roles import ROLES

    codes = value.replace(" ", "").split(",") if isinstance(value, str) else value
    codes = sorted({c for c in codes if c})
    unknown = [c for c in codes if c not in ROLES or c in ("admin", "inspector")]
    if unknown:
        raise ValidationError(f"{', '.join(unknown)}: not a role that can get reminders.")
    return ",".join(codes)


def set_targets(uow: UnitOfWork, access: Access, study_id: int, *, filing_days: int,
                approval_days: int, expiry_reminders: str = DEFAULT_EXPIRY_REMINDERS,
                milestone_reminders: str = DEFAULT_MILESTONE_REMINDERS,
                expiry_roles: str | list[str] = DEFAULT_REMINDER_ROLES,
                milestone_roles: str | list[str] = DEFAULT_REMINDER_ROLES) -> None:
    """Timeliness targets (days from document date to filing, from filing to approval),
    reminder thresholds of a study and who gets each kind of reminder (roles; none: the
    reminders are recorded and listed in the task list, not mailed)."""
    access.require(Permission.MANAGE_STUDY, study_id)
    _study(uow, study_id)
    for what, n in (("filing", filing_days), ("approval", approval_days)):
        if not 0 < n <= 3650:
            raise ValidationError(f"The {what} target must be between 1 and 3650 days.")
    uow.emit("tracking_targets", study_id, "tracking.targets_set", {"targets": {
        "filing_days": filing_days, "approval_days": approval_days,
        "expiry_reminders": _thresholds(expiry_reminders),
        "milestone_reminders": _thresholds(milestone_reminders),
        "expiry_roles": _roles(expiry_roles),
        "milestone_roles": _roles(milestone_roles)}}, study_id=study_id)


def targets_of(session, study_id: int) -> TrackingTargets:  # type: ignore[no-untyped-def]
    """The study's targets, or the defaults (not stored) when none were set."""
    row = session.get(TrackingTargets, study_id)
    return row or TrackingTargets(
        study_id=study_id, filing_days=DEFAULT_FILING_DAYS, approval_days=DEFAULT_APPROVAL_DAYS,
        expiry_reminders=DEFAULT_EXPIRY_REMINDERS,
        milestone_reminders=DEFAULT_MILESTONE_REMINDERS, expiry_roles=DEFAULT_REMINDER_ROLES,
        milestone_roles=DEFAULT_REMINDER_ROLES)


def set_expiry_rule(uow: UnitOfWork, access: Access, artifact: str, validity_days: int) -> None:
    """How long documents of an artifact stay valid after their date (0: they never expire).
    Configuration of the whole server: administrators only."""
    if not access.is_admin:
        from etmf.errors import Forbidden
        raise Forbidden("Only an administrator may change expiry rules.")
    found = _artifact(artifact)
    if not 0 <= validity_days <= 36500:
        raise ValidationError("The validity must be between 0 and 36500 days.")
    row = uow.session.get(ExpiryRule, found.unique_id)
    uow.emit("expiry_rule", found.unique_id, "expiry.rule_set",
             {"artifact_id": found.unique_id,
              "validity_days": [row.validity_days if row else None, validity_days]})


# ---- persons -------------------------------------------------------------------------------


def _can_manage_site(uow: UnitOfWork, access: Access, site_id: int) -> Site:
    site = uow.session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.MANAGE_STUDY, site.study_id, site.id)
    return site


def create_person(uow: UnitOfWork, access: Access, *, name: str, email: str | None = None,
                  site_id: int, role: str) -> int:
    """A person working at a site (their CV, licence and training are theirs, not the site's)."""
    site = _can_manage_site(uow, access, site_id)
    name = " ".join((name or "").split())
    if not name or len(name) > 200:
        raise ValidationError("A person needs a name (at most 200 characters).")
    email = (email or "").strip() or None
    if email and ("@" not in email or len(email) > 320):
        raise ValidationError(f"{email!r} is not an e-mail address.")
    person_id = uow.allocate_id(Person)
    uow.emit("person", person_id, "person.created", {"name": name, "email": email},
             expected_version=0, study_id=site.study_id)
    link_person_to_site(uow, access, person_id, site_id, role)
    return person_id


def link_person_to_site(uow: UnitOfWork, access: Access, person_id: int, site_id: int,
                        role: str) -> None:
    site = _can_manage_site(uow, access, site_id)
    if uow.session.get(Person, person_id) is None:
        raise NotFound("There is no such person.")
    role = " ".join((role or "").split())
    if not role or len(role) > 60:
        raise ValidationError("Give the person's role at the site (e.g. Sub-Investigator).")
    if uow.session.get(PersonSite, (person_id, site_id, role)) is not None:
        return
    uow.emit("person", person_id, "person.site_linked", {"site_id": site_id, "role": role},
             study_id=site.study_id)


def unlink_person_from_site(uow: UnitOfWork, access: Access, person_id: int, site_id: int,
                            role: str, *, reason: str | None = None) -> None:
    site = _can_manage_site(uow, access, site_id)
    if uow.session.get(PersonSite, (person_id, site_id, role)) is None:
        raise NotFound("The person does not have this role at this site.")
    uow.emit("person", person_id, "person.site_unlinked", {"site_id": site_id, "role": role},
             study_id=site.study_id, reason=reason)


def link_person_document(uow: UnitOfWork, access: Access, person_id: int,
                         document_id: int) -> None:
    """Make a document (a CV, licence, training record) one of the person's: it then counts at
    every site where the person works."""
    doc = uow.session.get(Document, document_id)
    if doc is None:
        raise NotFound("There is no such document.")
    access.require(Permission.FILE, doc.study_id, doc.site_id)
    if uow.session.get(Person, person_id) is None:
        raise NotFound("There is no such person.")
    if uow.session.get(PersonDocument, (person_id, document_id)) is not None:
        return
    uow.emit("person", person_id, "person.document_linked", {"document_id": document_id},
             study_id=doc.study_id)


# ---- placeholders from the EDL -------------------------------------------------------------


def create_placeholders(uow: UnitOfWork, access: Access, study_id: int, *,
                        site_id: int | None = None) -> int:
    """A placeholder document for every expected entry (of one site, or the whole study) that
    has neither a placeholder nor a filed document yet. Returns how many were created."""
    from etmf.documents import services as docs
    from etmf.tracking.expected import entry_states

    access.require(Permission.MANAGE_STUDY, study_id, site_id)
    model = load_reference_model()
    created = 0
    for state in entry_states(uow.session, study_id, uow.now.date(), site_id=site_id):
        e = state.entry
        if e.placeholder_id is not None or state.filed > 0:
            continue
        artifact = model.artifact(e.artifact_id)
        doc_id = docs.create_placeholder(uow, access, docs.NewRecord(
            study_id=study_id, artifact=e.artifact_id, title=f"Expected: {artifact.name}",
            level=e.level, country_id=e.country_id, site_id=e.site_id))
        uow.emit("edl", study_id, "edl.placeholder_linked",
                 {"entry_id": e.id, "document_id": doc_id}, study_id=study_id)
        created += 1
    return created


def fill_placeholder(uow: UnitOfWork, access: Access, payload: dict[str, object],
                     version: dict[str, object]) -> int | None:
    """Called by documents.file_document: when an EDL placeholder waits for exactly this
    artifact at this place, the filed file becomes its first version (and the filer's title,
    dates and person its metadata) instead of a new document. Returns its id, or None."""
    doc = uow.session.scalar(
        select(Document).join(EdlEntry, EdlEntry.placeholder_id == Document.id).where(
            Document.study_id == payload["study_id"], Document.status == PLACEHOLDER,
            Document.artifact_id == payload["artifact_id"], Document.level == payload["level"],
            Document.country_id.is_(None) if payload["country_id"] is None
            else Document.country_id == payload["country_id"],
            Document.site_id.is_(None) if payload["site_id"] is None
            else Document.site_id == payload["site_id"])
        .order_by(Document.id).limit(1))
    if doc is None:
        return None
    version = dict(version, number=1)
    uow.emit("document", doc.id, "document.version_added", {"version": version},
             expected_version=doc.version, study_id=doc.study_id,
             reason="Fills the expected-document placeholder")
    changes: dict[str, list[object]] = {}
    for field in ("title", "person", "language", "sub_artifact", "document_date",
                  "expiry_date"):
        old = getattr(doc, field)
        old = old.isoformat() if isinstance(old, date) else old
        if payload.get(field) != old:
            changes[field] = [old, payload.get(field)]
    if changes:
        uow.emit("document", doc.id, "document.metadata_changed", {"changes": changes},
                 expected_version=doc.version, study_id=doc.study_id)
    return doc.id

"""Study plan, protocol/ICF versions and their approval and activation at each site.

"Which version was in force at site X on date D" has one answer: among the versions of that
kind approved for the site and activated on or before D, the one activated last (an
amendment activated later replaces the earlier version from its activation date on).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.studyplan.models import KINDS, SiteVersionApproval, StudyDocumentVersion, StudyPlan
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents.models import Document
from etmf.errors import Conflict, NotFound, ValidationError
from etmf.studies.models import Site, Study

KIND_LABELS = {"protocol": "Protocol", "icf": "Informed consent form"}
#: What the study page offers as a version's TMF document (Reference Model 3.3.1: Protocol,
#: Protocol Amendment, Informed Consent Form) and as a site's approval (IRB or IEC Decision).
#: A list of every approved document of a Phase III study would be 175,000 options.
VERSION_ARTIFACTS = ("02.01.02", "02.01.04", "02.02.03")
APPROVAL_ARTIFACTS = ("04.01.02",)


@dataclass(frozen=True)
class PlanChange:
    indication: str | None = None
    planned_enrollment: int | None = None
    planned_start: date | None = None
    planned_end: date | None = None


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def set_study_plan(uow: UnitOfWork, access: Access, study_id: int, cmd: PlanChange) -> None:
    """Record the indication, planned enrollment and planned dates of a study."""
    access.require(Permission.MANAGE_STUDY, study_id)
    if uow.session.get(Study, study_id) is None:
        raise NotFound("There is no such study.")
    if cmd.planned_enrollment is not None and not 0 < cmd.planned_enrollment <= 1_000_000:
        raise ValidationError("Planned enrollment must be a positive number of subjects.")
    if cmd.planned_start and cmd.planned_end and cmd.planned_end < cmd.planned_start:
        raise ValidationError("The planned end date is before the planned start date.")
    plan = uow.session.get(StudyPlan, study_id)
    uow.emit("ctms_study_plan", study_id, "ctms.study_plan_set",
             {"study_id": study_id, "indication": (cmd.indication or "").strip() or None,
              "planned_enrollment": cmd.planned_enrollment,
              "planned_start": _iso(cmd.planned_start), "planned_end": _iso(cmd.planned_end)},
             expected_version=plan.version if plan else 0, study_id=study_id)


def _study_document(session: Session, study_id: int, document_id: int, what: str) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.study_id != study_id:
        raise NotFound(f"The {what} is not a document of this study.")
    return doc


def register_version(uow: UnitOfWork, access: Access, study_id: int, *, kind: str, label: str,
                     document_id: int, summary: str | None = None) -> int:
    """Declare a protocol version (an amendment) or an ICF version, filed as a TMF document."""
    access.require(Permission.MANAGE_STUDY, study_id)
    if kind not in KINDS:
        raise ValidationError(f"Kind {kind!r} is not one of {', '.join(KINDS)}.")
    label = label.strip()
    if not label:
        raise ValidationError("A version needs a label, e.g. 'v2.0' or 'Amendment 1'.")
    _study_document(uow.session, study_id, document_id, "version's document")
    exists = uow.session.scalar(select(StudyDocumentVersion.id).where(
        StudyDocumentVersion.study_id == study_id, StudyDocumentVersion.kind == kind,
        StudyDocumentVersion.label == label))
    if exists:
        raise Conflict(f"{KIND_LABELS[kind]} {label} is already registered.")
    version_id = uow.allocate_id(StudyDocumentVersion)
    uow.emit("ctms_document_version", version_id, "ctms.version_registered",
             {"study_id": study_id, "kind": kind, "label": label, "document_id": document_id,
              "summary": summary or None},
             expected_version=0, study_id=study_id)
    return version_id


def approve_version_at_site(uow: UnitOfWork, access: Access, *, site_id: int, version_id: int,
                            approval_document_id: int, approved_on: date,
                            activated_on: date | None = None) -> int:
    """Record the IRB/IEC approval of a version for a site and, optionally, its activation."""
    site = uow.session.get(Site, site_id)
    version = uow.session.get(StudyDocumentVersion, version_id)
    if site is None or version is None or version.study_id != site.study_id:
        raise NotFound("There is no such site or version in this study.")
    access.require(Permission.MANAGE_STUDY, site.study_id, site.id)
    doc = _study_document(uow.session, site.study_id, approval_document_id, "approval")
    if doc.status != "approved":
        raise ValidationError(
            f"The IRB/IEC approval document '{doc.title}' is not approved in the TMF yet "
            f"(it is {doc.status}); approve it first.")
    if activated_on is not None and activated_on < approved_on:
        raise ValidationError("A version cannot be activated before it was approved.")
    exists = uow.session.scalar(select(SiteVersionApproval.id).where(
        SiteVersionApproval.site_id == site_id, SiteVersionApproval.version_id == version_id))
    if exists:
        raise Conflict(f"{KIND_LABELS[version.kind]} {version.label} is already approved for "
                       f"site {site.number}.")
    approval_id = uow.allocate_id(SiteVersionApproval)
    uow.emit("ctms_site_approval", approval_id, "ctms.version_approved_at_site",
             {"study_id": site.study_id, "site_id": site_id, "version_id": version_id,
              "kind": version.kind, "label": version.label,
              "approval_document_id": approval_document_id,
              "approved_on": approved_on.isoformat(), "activated_on": _iso(activated_on)},
             expected_version=0, study_id=site.study_id)
    return approval_id


def activate_version_at_site(uow: UnitOfWork, access: Access, approval_id: int, *,
                             activated_on: date) -> None:
    approval = uow.session.get(SiteVersionApproval, approval_id)
    if approval is None:
        raise NotFound("There is no such approval.")
    access.require(Permission.MANAGE_STUDY, approval.study_id, approval.site_id)
    if approval.activated_on is not None:
        raise Conflict("This version is already active at the site.")
    if activated_on < approval.approved_on:
        raise ValidationError("A version cannot be activated before it was approved.")
    uow.emit("ctms_site_approval", approval_id, "ctms.version_activated_at_site",
             {"site_id": approval.site_id, "activated_on": activated_on.isoformat()},
             expected_version=1, study_id=approval.study_id)


def version_in_force(session: Session, site_id: int, kind: str,
                     on: date) -> StudyDocumentVersion | None:
    """The protocol or ICF version in force at a site on a date, or None before the first."""
    row = session.execute(
        select(StudyDocumentVersion)
        .join(SiteVersionApproval, SiteVersionApproval.version_id == StudyDocumentVersion.id)
        .where(SiteVersionApproval.site_id == site_id, SiteVersionApproval.kind == kind,
               SiteVersionApproval.activated_on.is_not(None),
               SiteVersionApproval.activated_on <= on)
        .order_by(SiteVersionApproval.activated_on.desc(), SiteVersionApproval.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return row


def versions_in_force(session: Session, study_id: int, site_ids: Collection[int],
                      on: date) -> dict[tuple[int, str], StudyDocumentVersion | None]:
    """``version_in_force`` of every (site, kind) of the given sites, in two statements."""
    latest: dict[tuple[int, str], int] = {}
    for site_id, kind, version_id in session.execute(
            select(SiteVersionApproval.site_id, SiteVersionApproval.kind,
                   SiteVersionApproval.version_id)
            .where(SiteVersionApproval.study_id == study_id,
                   SiteVersionApproval.activated_on.is_not(None),
                   SiteVersionApproval.activated_on <= on)
            .order_by(SiteVersionApproval.activated_on, SiteVersionApproval.id)):
        latest[(site_id, kind)] = version_id  # the last activated wins, as in version_in_force
    by_id = {v.id: v for v in versions(session, study_id)}
    return {(site_id, kind): by_id.get(latest[(site_id, kind)]) if (site_id, kind) in latest
            else None for site_id in site_ids for kind in ("protocol", "icf")}


def versions(session: Session, study_id: int) -> list[StudyDocumentVersion]:
    return list(session.scalars(select(StudyDocumentVersion)
                                .where(StudyDocumentVersion.study_id == study_id)
                                .order_by(StudyDocumentVersion.kind, StudyDocumentVersion.id)))


def approvals(session: Session, study_id: int) -> list[SiteVersionApproval]:
    return list(session.scalars(select(SiteVersionApproval)
                                .where(SiteVersionApproval.study_id == study_id)
                                .order_by(SiteVersionApproval.site_id,
                                          SiteVersionApproval.approved_on)))

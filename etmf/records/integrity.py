"""Is every referenced file still there and unchanged? What does nothing reference?

``verify_referenced_blobs`` re-hashes every blob a document version references (the scrub
behind `etmf storage verify`); ``find_unreferenced`` and ``reconcile`` list, and optionally
quarantine, blobs that no version references (left by a crash between the blob write and
the database commit). A failed hash is an alert, never a silent event (REC-1):
``record_integrity_alert`` writes a ``storage.integrity_alert`` event on the stream
("blob", sha256) and tells the administrators.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.audit.store import Actor, Context, unit_of_work
from etmf.clock import Clock
from etmf.db import Database
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import EtmfError
from storage.base import BlobRef
from storage.errors import BlobIntegrityError, BlobNotFound

log = logging.getLogger("etmf.records")

ALERT_EVENT = "storage.integrity_alert"
CORRUPT = "corrupt"
MISSING = "missing"


class StoredFileCorrupt(EtmfError):
    """A stored file failed its integrity check on read; its bytes were not served."""

    status = 500
    code = "integrity_error"
    title = "The stored file failed its integrity check"


@dataclass(frozen=True)
class VersionRef:
    """One document version and the blob it references, named the way people know it."""

    document_id: int
    title: str
    version_id: int
    number: int
    label: str
    sha256: str
    size: int
    study_id: int

    def describe(self) -> str:
        return (f"document {self.document_id} “{self.title}” version {self.label} "
                f"(no. {self.number})")


@dataclass(frozen=True)
class BlobProblem:
    version: VersionRef
    problem: str  # CORRUPT or MISSING
    detail: str

    def describe(self) -> str:
        what = "is corrupt" if self.problem == CORRUPT else "is missing"
        return f"{self.version.describe()}: blob {self.version.sha256} {what}. {self.detail}"


@dataclass
class ScrubReport:
    blobs_checked: int = 0
    versions_checked: int = 0
    bytes_checked: int = 0
    problems: list[BlobProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def referenced_versions(session: Session) -> list[VersionRef]:
    """Every document version, with its document's title, in document and version order."""
    rows = session.execute(
        select(DocumentVersion.document_id, Document.title, DocumentVersion.id,
               DocumentVersion.number, DocumentVersion.label, DocumentVersion.sha256,
               DocumentVersion.size, Document.study_id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .order_by(DocumentVersion.document_id, DocumentVersion.number)
    ).all()
    return [VersionRef(*row) for row in rows]


def referenced_digests(session: Session) -> set[str]:
    """The SHA-256 of every blob the database references (document versions)."""
    return set(session.scalars(select(DocumentVersion.sha256).distinct()))


def check_blob(store, sha256: str) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    """Re-hash one blob: ``None`` if sound, else (problem, detail). Storage outages raise."""
    try:
        with store.open(sha256) as reader:
            for _chunk in reader:
                pass
    except BlobIntegrityError as exc:
        return CORRUPT, str(exc)
    except BlobNotFound as exc:
        return MISSING, str(exc)
    return None


def verify_referenced_blobs(
    session: Session, store, *,  # type: ignore[no-untyped-def]
    progress: Callable[[int], None] | None = None,
) -> ScrubReport:
    """Re-hash every blob a version references; each distinct blob is read once.

    ``progress`` is called with the number of versions covered by each blob checked.
    ``StorageUnavailable`` propagates: an unreachable store is not a verdict on the files.
    """
    by_digest: dict[str, list[VersionRef]] = defaultdict(list)
    for version in referenced_versions(session):
        by_digest[version.sha256].append(version)
    report = ScrubReport()
    for digest, versions in by_digest.items():
        outcome = check_blob(store, digest)
        report.blobs_checked += 1
        report.versions_checked += len(versions)
        report.bytes_checked += versions[0].size
        if outcome is not None:
            problem, detail = outcome
            report.problems.extend(BlobProblem(v, problem, detail) for v in versions)
        if progress is not None:
            progress(len(versions))
    return report


def count_referenced_versions(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(DocumentVersion)) or 0)


# ---- reconcile ----------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    stored: int = 0
    referenced: int = 0
    unreferenced: list[BlobRef] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    #: Referenced in the database but absent from the store (see `etmf storage verify`).
    missing: list[str] = field(default_factory=list)


def find_unreferenced(session: Session, store) -> ReconcileReport:  # type: ignore[no-untyped-def]
    """Compare the store with the database: blobs nobody references, and the reverse."""
    referenced = referenced_digests(session)
    report = ReconcileReport(referenced=len(referenced))
    seen: set[str] = set()
    for ref in store.iter_refs():
        report.stored += 1
        seen.add(ref.sha256)
        if ref.sha256 not in referenced:
            report.unreferenced.append(ref)
    report.unreferenced.sort(key=lambda r: r.sha256)
    report.missing = sorted(referenced - seen)
    return report


def reconcile(db: Database, store, *, quarantine: bool = False) -> ReconcileReport:  # type: ignore[no-untyped-def]
    """List unreferenced blobs; with ``quarantine`` move each one aside.

    Never touches a referenced blob: just before each move the database is asked again,
    so a version committed since the listing keeps its blob. (A blob whose upload is still
    between its write and its commit looks unreferenced; run with ``--quarantine`` when no
    upload is in progress, or leave the listing for an administrator to judge.)
    """
    with db.read_session() as session:
        report = find_unreferenced(session, store)
    if quarantine:
        for ref in report.unreferenced:
            with db.read_session() as session:
                still_unreferenced = session.scalar(
                    select(DocumentVersion.id).where(DocumentVersion.sha256 == ref.sha256)
                    .limit(1)) is None
            if still_unreferenced:
                store.quarantine(ref.sha256)
                report.quarantined.append(ref.sha256)
    return report


# ---- alerts -------------------------------------------------------------------------------


def record_integrity_alert(
    db: Database, clock: Clock, actor: Actor, context: Context | None, *,
    sha256: str, problem: str, detail: str, where: str,
    versions: Iterable[VersionRef] = (), actual_sha256: str | None = None,
) -> None:
    """Write a ``storage.integrity_alert`` event (its own transaction) and log it.

    The event is appended even when the request that found the problem fails: the alert
    must outlive the error page.
    """
    versions = list(versions)
    study_ids = {v.study_id for v in versions}
    log.error("integrity alert: blob %s in %s is %s (%s)", sha256, where, problem,
              "; ".join(v.describe() for v in versions) or "not referenced")
    with unit_of_work(db, clock, actor, context) as uow:
        uow.emit(
            "blob", sha256, ALERT_EVENT,
            {
                "sha256": sha256, "actual_sha256": actual_sha256, "problem": problem,
                "detail": detail, "store": where,
                "versions": [
                    {"document_id": v.document_id, "title": v.title, "version_id": v.version_id,
                     "number": v.number, "label": v.label}
                    for v in versions
                ],
            },
            study_id=study_ids.pop() if len(study_ids) == 1 else None,
        )
        uow.commit()


def notify_administrators(db: Database, mailer, subject: str, body: str) -> None:  # type: ignore[no-untyped-def]
    """Mail every active administrator; a mail failure is logged, never raised."""
    from etmf.accounts.models import GlobalRole, User
    from etmf.mail import Mail

    try:
        with db.read_session() as session:
            emails = tuple(session.scalars(
                select(User.email).join(User.roles)
                .where(GlobalRole.name == "admin", User.active.is_(True))
                .order_by(User.email)))
        if emails:
            mailer.send(Mail(to=emails, subject=subject, body=body))
    except Exception:  # the alert event is already recorded; mail is a courtesy on top
        log.exception("could not mail the administrators about an integrity alert")


def alert_for_problems(db: Database, clock: Clock, actor: Actor, store,  # type: ignore[no-untyped-def]
                       problems: list[BlobProblem], mailer=None) -> None:  # type: ignore[no-untyped-def]
    """One alert event per damaged blob found by a scrub."""
    grouped: dict[str, list[BlobProblem]] = defaultdict(list)
    for p in problems:
        grouped[p.version.sha256].append(p)
    for digest, items in grouped.items():
        record_integrity_alert(
            db, clock, actor, None, sha256=digest, problem=items[0].problem,
            detail=items[0].detail, where=store.describe(), versions=[p.version for p in items])
    if mailer is not None and problems:
        notify_administrators(
            db, mailer, f"eTMF: {len(grouped)} stored file(s) failed the integrity check",
            "\n".join(p.describe() for p in problems))


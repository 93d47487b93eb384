"""The certified archive of a closed study: lock it, then write one zip that can be checked
without our server.

Contents: the EMS export (``exchange.xml`` and the zone/section/artifact folders), and under
``archive/``: the study's full audit trail as CSV and PDF, every signature validation report
(JSON), the latest signed audit checkpoint with the server's public key, an inclusion proof
of the lock event against it (checked by the bundled standalone ``proofcheck.py``), a README
saying how to verify, and ``SHA256SUMS`` listing the SHA-256 of every other file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.audit import queries
from etmf.audit.models import Event
from etmf.audit.store import Actor, unit_of_work
from etmf.audit.views import describe_event
from etmf.documents.models import Document
from etmf.errors import NotFound
from etmf.exchange.export import ExportSummary, write_package
from etmf.studies.models import Study
from etmf.studies.services import lock_study

SUMS = "archive/SHA256SUMS"

README = """Certified archive of study {protocol} ({title})
Created {created} UTC by {actor}. The study was locked (read-only) before this archive
was written.

Verify it without the eTMF server:

1. Every file: unzip, then `sha256sum -c archive/SHA256SUMS` (run in the unzipped folder).
   exchange.xml also carries each document file's SHA-256 (INTEGRITY) and validates
   against the eTMF-EMS XSD (TmfReferenceModelExchange.xsd).
2. The audit trail: archive/audit-trail.csv and .pdf hold every event of the study with
   its hash. archive/lock-event-proof.json proves that the lock event (seq {lock_seq}) is
   in the audit log signed by the checkpoint archive/checkpoint.json:
       python archive/proofcheck.py archive/lock-event-proof.json --key-id {key_id}
   (needs only Python 3 and the `cryptography` package; compare the key id with the one
   the sponsor published).
3. Signatures: archive/signature-reports.json lists every signature validation stored for
   the study; the signed PDFs themselves can be checked with any PAdES validator
   (e.g. `pdfsig` from poppler-utils).

{documents} documents, {versions} versions, {size} bytes of files.
"""


@dataclass
class ArchiveSummary:
    path: Path
    export: ExportSummary
    files: int
    lock_seq: int


def create_archive(svc, study_id: int, target: Path, *, reason: str, actor_name: str,  # type: ignore[no-untyped-def]
                   progress: Callable[[int, int, str], None] | None = None) -> ArchiveSummary:
    """Lock the study (if it is not locked yet) and write the certified archive to ``target``."""
    from etmf.audit.service import create_checkpoint, prove, public_key

    admin = Access(user_id=None, name=actor_name, is_admin=True)
    with svc.db.read_session() as session:
        study = session.get(Study, study_id)
        if study is None:
            raise NotFound("There is no such study.")
        locked, version = study.locked_at is not None, study.version
    if not locked:
        with unit_of_work(svc.db, svc.clock, Actor(None, actor_name)) as uow:
            lock_study(uow, admin, study_id, reason=reason, expected_version=version)
            uow.commit()
    now = svc.clock.now()
    with svc.db.read_session() as session:
        study = session.get(Study, study_id)
        lock_seq = session.scalar(select(Event.seq).where(
            Event.stream_type == "study", Event.stream_id == str(study_id),
            Event.type == "study.locked").order_by(Event.seq.desc()).limit(1)) or 0
        sth = create_checkpoint(session, svc.settings, now)
        proof = prove(session, svc.settings, lock_seq) if lock_seq else None
        extra = _extras(session, svc, study, now, sth, proof, public_key(svc.settings))
        with target.open("wb") as out:
            summary = write_package(session, svc.blobs, study_id, out, now=now,
                                    progress=progress, extra_files=extra)
        readme = README.format(protocol=study.protocol_number, title=study.title,
                               created=now.strftime("%Y-%m-%d %H:%M:%S"), actor=actor_name,
                               lock_seq=lock_seq, key_id=sth.key_id,
                               documents=summary.documents, versions=summary.versions,
                               size=summary.bytes)
    with zipfile.ZipFile(target, "a") as zf:
        zf.writestr("archive/README.txt", readme, compress_type=zipfile.ZIP_DEFLATED)
        lines = []
        for info in zf.infolist():
            digest = hashlib.sha256()
            with zf.open(info) as fh:
                while chunk := fh.read(1024 * 1024):
                    digest.update(chunk)
            lines.append(f"{digest.hexdigest()}  {info.filename}\n")
        zf.writestr(SUMS, "".join(lines), compress_type=zipfile.ZIP_DEFLATED)
    return ArchiveSummary(path=target, export=summary, files=len(lines) + 1, lock_seq=lock_seq)


def _extras(session, svc, study, now, sth, proof, key_pem):  # type: ignore[no-untyped-def]
    from etmf.signing.models import SignatureValidation

    f = queries.AuditFilter(study_id=study.id)
    csv_text = "".join(queries.stream_csv(queries.iter_all(session, f)))
    views = [describe_event(e) for e in queries.iter_all(session, f)]
    pdf = queries.render_pdf(f"Audit trail of study {study.protocol_number}",
                             study.title, views, now, "etmf archive create")
    reports = [{"document_id": v.document_id, "version_id": v.version_id,
                "sha256": v.sha256, "checked_at": v.checked_at.isoformat(),
                "checked_by": v.checked_by_name, "overall": v.overall,
                "signatures": json.loads(v.report)}
               for v in session.scalars(select(SignatureValidation).join(
                   Document, Document.id == SignatureValidation.document_id).where(
                   Document.study_id == study.id).order_by(SignatureValidation.id))]
    proofcheck = resources.files("etmf.audit").joinpath("proofcheck.py").read_bytes()
    files = [("archive/audit-trail.csv", csv_text.encode("utf-8")),
             ("archive/audit-trail.pdf", pdf),
             ("archive/signature-reports.json",
              json.dumps(reports, indent=1, ensure_ascii=False).encode("utf-8")),
             ("archive/checkpoint.json", sth.to_json().encode("utf-8")),
             ("archive/checkpoint-public-key.pem", key_pem.encode("ascii")),
             ("archive/proofcheck.py", proofcheck)]
    if proof is not None:
        files.append(("archive/lock-event-proof.json",
                      json.dumps(proof, indent=1).encode("utf-8")))
    return files


def read_sums(data: bytes) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: digest}."""
    out = {}
    for line in io.StringIO(data.decode("utf-8")):
        digest, _sep, name = line.rstrip("\n").partition("  ")
        out[name] = digest
    return out

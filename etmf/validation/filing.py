"""Filing the validation report into a study's TMF and sending it for signature.

The report PDF becomes a trial-level document of the artifact the Reference Model gives for
system validation in the configured zone (``ETMF_VALIDATION_ZONE``):

* zone 10 (Data Management): 10.04.03 Validation Documentation, sub-artifact
  "Validation Report";
* zone 01 (Trial Management): 01.01.20 Operational Oversight, sub-artifact
  "Operational Oversight Evidence".

It is filed and sent to QC in one unit of work (In QC is a signable state), and, when signers
are named, a sequential signature request follows the report's signature block (Prepared by →
Reviewed by → Approved by). From there it is a record like any other: the signers sign
through the ceremony, each signature becomes a new version, and it validates the same way.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from etmf.accounts.access import Access
from etmf.accounts.models import User
from etmf.audit.store import UnitOfWork
from etmf.bootstrap import Services
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action
from etmf.errors import NotFound, ValidationError
from etmf.studies.models import Study

#: zone → (artifact number, sub-artifact) of the TMF Reference Model 3.3.1.
ARTIFACTS: dict[str, tuple[str, str]] = {
    "10": ("10.04.03", "Validation Report"),
    "01": ("01.01.20", "Operational Oversight Evidence"),
}


@dataclass(frozen=True)
class FiledReport:
    document_id: int
    request_id: int | None
    artifact: str
    study: str


def study_by_protocol(uow: UnitOfWork, protocol_number: str) -> Study:
    study = uow.session.scalar(select(Study).where(Study.protocol_number == protocol_number))
    if study is None:
        raise NotFound(f"There is no study {protocol_number!r}.")
    return study


def user_by_email(uow: UnitOfWork, email: str) -> User:
    user = uow.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if user is None:
        raise NotFound(f"There is no user {email!r}.")
    return user


def parse_signer(text: str) -> tuple[str, str]:
    """``EMAIL=MEANING`` (meaning code: author, review, approval …)."""
    email, sep, meaning = text.partition("=")
    if not sep or not email.strip() or not meaning.strip():
        raise ValidationError(f"{text!r} is not EMAIL=MEANING (for example "
                              "qa@example.org=approval).")
    return email.strip(), meaning.strip()


def file_validation_report(uow: UnitOfWork, svc: Services, access: Access, *, study_id: int,
                           pdf: bytes, report_id: str, verdict: str, generated_at: datetime,
                           zone: str, signers: Sequence[tuple[int, str]] = (),
                           link: Callable[[int], str]) -> FiledReport:
    """File the report PDF (In QC) and, if ``signers`` ((user id, meaning), in order) are
    given, request their signatures. The caller commits."""
    from etmf.documents.services import StoredFile
    from etmf.workflows.services import NewSignatureRequest, SignerSpec, request_signatures

    if zone not in ARTIFACTS:
        raise ValidationError(f"Zone {zone!r} takes no validation report; use 10 or 01.")
    artifact, sub_artifact = ARTIFACTS[zone]
    ref = svc.blobs.put(io.BytesIO(pdf))
    stored = StoredFile(sha256=ref.sha256, size=ref.size, mime="application/pdf",
                        filename=f"{report_id}.pdf")
    document_id = docs.file_document(uow, access, docs.FileDocument(
        study_id=study_id, artifact=artifact, sub_artifact=sub_artifact, level="trial",
        title=f"Computer system validation report {report_id} ({verdict})", file=stored,
        document_date=generated_at.date()))
    docs.transition(uow, access, document_id, Action.SUBMIT_QC, expected_version=1)
    request_id = None
    if signers:
        request_id = request_signatures(uow, access, NewSignatureRequest(
            document_id=document_id,
            signers=tuple(SignerSpec(user_id, meaning) for user_id, meaning in signers),
            message=f"Validation report {report_id}: {verdict}."),
            link=link, notify=svc.mailer.send)
    study = uow.session.get(Study, study_id)
    assert study is not None
    return FiledReport(document_id=document_id, request_id=request_id, artifact=artifact,
                       study=study.protocol_number)

"""Validate every signature in a PDF and say, in one sentence each, what it proves.

pyHanko does the cryptography, the chain of trust and the difference analysis of later
revisions; this module turns its status into a report for the document page and the record.
Anything added after a signature beyond further signatures, form filling or long-term
validation data makes that signature INVALID: poppler's ``pdfsig`` does not flag such
additions, so this check is ours to make (SIG-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO

from cryptography import x509
from pyhanko.pdf_utils.generic import PdfObject
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from etmf.signing.errors import EncryptedPdf, NotAPdf
from etmf.signing.keystore import to_asn1_cert

VALID = "VALID"
INVALID = "INVALID"
UNTRUSTED = "UNTRUSTED"
REVOKED = "REVOKED"

_ALLOWED_LATER_CHANGES = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES,
                          ModificationLevel.FORM_FILLING)
_WHOLE = (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION)


@dataclass(frozen=True)
class SignatureReport:
    """The outcome for one signature, in the order the signatures were applied."""

    field_name: str
    signer_name: str
    signing_time: datetime | None
    timestamp_time: datetime | None
    meaning: str | None
    auth_type: str | None
    auth_seconds: int | None
    certificate_serial: int
    intact: bool
    valid: bool
    trusted: bool
    revoked: bool
    coverage: str
    modification_level: str
    level: str
    status: str
    summary: str


def _text(value: PdfObject | None) -> str | None:
    return None if value is None else str(value)


def _open(pdf_bytes: bytes) -> PdfFileReader:
    if not pdf_bytes.lstrip()[:5] == b"%PDF-":
        raise NotAPdf("This file is not a PDF (it does not start with %PDF-).")
    try:
        reader = PdfFileReader(BytesIO(pdf_bytes), strict=False)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise NotAPdf(f"This PDF cannot be read: {exc}") from exc
    if reader.encrypted:
        raise EncryptedPdf("This PDF is encrypted; its signatures cannot be checked.")
    return reader


def _has_revocation_data(reader: PdfFileReader) -> bool:
    if "/DSS" not in reader.root:
        return False
    dss = reader.root["/DSS"]
    return "/CRLs" in dss or "/OCSPs" in dss


def _level(emb: EmbeddedPdfSignature, status: PdfSignatureStatus, reader: PdfFileReader,
           archive_revisions: Sequence[int]) -> str:
    """The PAdES baseline level this signature reached, as far as this file shows."""
    ts = status.timestamp_validity
    if ts is None or not (ts.intact and ts.valid):
        return "PAdES B-B"
    if not _has_revocation_data(reader):
        return "PAdES B-T"
    if any(rev > emb.signed_revision for rev in archive_revisions):
        return "PAdES B-LTA"
    return "PAdES B-LT"


def _when(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


def _judge(status: PdfSignatureStatus) -> tuple[str, str]:
    """Status word and the reason sentence's core, most serious problem first."""
    if not status.intact:
        return INVALID, ("the signed content no longer matches the signature (it was altered "
                         "after signing, or the signature was copied from another document).")
    if not status.valid:
        return INVALID, "the signature value does not verify with the signer's certificate."
    if status.coverage not in _WHOLE:
        return INVALID, "the signature does not cover the whole document."
    if status.modification_level not in _ALLOWED_LATER_CHANGES or status.docmdp_ok is False:
        return INVALID, ("the document was changed after this signature (content added in a "
                         "later revision).")
    ts = status.timestamp_validity
    if ts is not None and not (ts.intact and ts.valid):
        return INVALID, "its time-stamp token does not verify."
    if status.revoked:
        details = status.revocation_details
        when = "" if details is None else f" on {_when(details.revocation_date)}"
        return REVOKED, f"the signer's certificate was revoked{when}."
    if not status.trusted:
        return UNTRUSTED, ("the signer's certificate does not lead to a trusted certificate "
                           "authority, or its revocation status is unknown.")
    return VALID, ""


def _summary(word: str, reason: str, status: PdfSignatureStatus, signer: str,
             when: datetime | None, meaning: str | None) -> str:
    what = f"signed by {signer} on {_when(when)} for '{meaning or 'no stated meaning'}'"
    if word != VALID:
        prefix = {INVALID: "INVALID", REVOKED: "REVOKED", UNTRUSTED: "UNTRUSTED"}[word]
        return f"{prefix}: {what}, but {reason}"
    since = {
        ModificationLevel.LTA_UPDATES: "only long-term validation data was added since.",
        ModificationLevel.FORM_FILLING: "only further signatures were added since.",
    }.get(status.modification_level or ModificationLevel.NONE,
          "the document has not changed since.")
    return f"Valid: {what}; {since}"


def _context(roots: Sequence[x509.Certificate], crls: Sequence[bytes] | None,
             moment: datetime | None) -> ValidationContext:
    return ValidationContext(
        trust_roots=[to_asn1_cert(c) for c in roots],
        crls=list(crls or ()),
        allow_fetching=False,
        # With CRLs given, a certificate whose status cannot be established is not trusted;
        # without any, revocation is not checked (and the report says UNTRUSTED only for
        # chain problems).
        revocation_mode="hard-fail" if crls else "soft-fail",
        moment=moment,
    )


def validate_pdf(pdf_bytes: bytes, trust_roots: Sequence[x509.Certificate], *,
                 crls: Sequence[bytes] | None = None,
                 now: datetime | None = None) -> list[SignatureReport]:
    """Validate every (non-timestamp) signature in ``pdf_bytes``, in signing order.

    ``trust_roots`` are the CAs to trust (ours, and the TSA's root); ``crls`` are DER CRLs
    to check revocation against (no fetching over the network). ``now`` fixes the validation
    time; if omitted pyHanko uses the current time.
    """
    reader = _open(pdf_bytes)
    context = _context(trust_roots, crls, now)
    archive_revisions = [ts.signed_revision for ts in reader.embedded_timestamp_signatures
                         if _doc_timestamp_ok(ts, trust_roots, crls, now)]
    reports = []
    for emb in reader.embedded_regular_signatures:
        status = validate_pdf_signature(emb, signer_validation_context=context)
        sig = emb.sig_object
        signer = _text(sig.get("/Name")) or str(status.signing_cert.subject.native.get(
            "common_name", "an unknown signer"))
        meaning = _text(sig.get("/Reason"))
        signing_time = status.signer_reported_dt or emb.self_reported_timestamp
        word, reason = _judge(status)
        auth_time = sig.get("/Prop_AuthTime")
        reports.append(SignatureReport(
            field_name=emb.field_name,
            signer_name=signer,
            signing_time=signing_time,
            timestamp_time=None if status.timestamp_validity is None
            else status.timestamp_validity.timestamp,
            meaning=meaning,
            auth_type=_text(sig.get("/Prop_AuthType")),
            auth_seconds=None if auth_time is None else int(auth_time),
            certificate_serial=int(status.signing_cert.serial_number),
            intact=status.intact,
            valid=status.valid,
            trusted=status.trusted,
            revoked=status.revoked,
            coverage=status.coverage.name if status.coverage else "UNKNOWN",
            modification_level=status.modification_level.name
            if status.modification_level else "UNKNOWN",
            level=_level(emb, status, reader, archive_revisions),
            status=word,
            summary=_summary(word, reason, status, signer, signing_time, meaning),
        ))
    return reports


def _doc_timestamp_ok(emb: EmbeddedPdfSignature, roots: Sequence[x509.Certificate],
                      crls: Sequence[bytes] | None, now: datetime | None) -> bool:
    status = validate_pdf_timestamp(emb, validation_context=_context(roots, crls, now))
    return bool(status.intact and status.valid and status.trusted)

"""A signature is bound to its exact bytes; any tampering is reported INVALID (SIG-3)."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from etmf.signing.keystore import to_asn1_cert
from etmf.signing.pades import PadesSigner
from etmf.signing.validation import validate_pdf

from .helpers import CHECK_AT, T0, Pki, make_pdf, manifestation, pdfsig, write


def _pyhanko_bottom_lines(pdf: bytes, pki: Pki) -> list[bool]:
    """pyHanko's own verdict, called directly, for each signature."""
    context = ValidationContext(trust_roots=[to_asn1_cert(pki.ca.certificate)], moment=CHECK_AT)
    return [validate_pdf_signature(sig, signer_validation_context=context).bottom_line
            for sig in PdfFileReader(BytesIO(pdf), strict=False).embedded_regular_signatures]


def _flip_byte_in_signed_range(pdf: bytes) -> bytes:
    """Change one byte of page content, well inside the first signed range."""
    at = pdf.index(b"Inclusion criteria") + 3
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]


def _add_page_in_later_revision(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    content = writer.add_object(generic.StreamObject(
        stream_data=b"BT /F1 12 Tf 72 700 Td (Dose changed to 50 mg) Tj ET"))
    writer.insert_page(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"),
        pdf_name("/MediaBox"): generic.ArrayObject([generic.NumberObject(v)
                                                    for v in (0, 0, 612, 792)]),
        pdf_name("/Contents"): content,
    }))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _draw_text_on_page_one_in_later_revision(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    stream = writer.add_object(generic.StreamObject(
        stream_data=b"BT /F1 12 Tf 72 650 Td (Exclusion criteria waived) Tj ET"))
    writer.add_stream_to_page(0, stream)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _transplant_signature(donor: bytes, recipient: bytes) -> bytes:
    """Copy the donor's signature value (the /Contents hex) into the recipient's slot."""
    def contents_span(pdf: bytes) -> tuple[int, int]:
        sig = PdfFileReader(BytesIO(pdf)).embedded_regular_signatures[0]
        start1, len1, start2, _len2 = (int(v) for v in sig.sig_object["/ByteRange"])
        return start1 + len1, start2

    d_start, d_end = contents_span(donor)
    r_start, r_end = contents_span(recipient)
    assert d_end - d_start == r_end - r_start
    return recipient[:r_start] + donor[d_start:d_end] + recipient[r_end:]


@pytest.mark.req("SIG-3")
def test_flipped_byte_in_signed_range_is_invalid_everywhere(signed_once: bytes, pki: Pki,
                                                            nss_db: Path,
                                                            tmp_path: Path) -> None:
    tampered = _flip_byte_in_signed_range(signed_once)
    report = validate_pdf(tampered, [pki.ca.certificate], now=CHECK_AT)[0]
    assert report.status == "INVALID" and not report.intact
    assert report.summary.startswith("INVALID: signed by Dr Jane Smith")
    assert "no longer matches the signature" in report.summary
    assert _pyhanko_bottom_lines(tampered, pki) == [False]
    assert "Signature is Valid." not in pdfsig(write(tmp_path, "t.pdf", tampered), nss_db)


@pytest.mark.req("SIG-3")
@pytest.mark.parametrize("tamper", [_add_page_in_later_revision,
                                    _draw_text_on_page_one_in_later_revision],
                         ids=["page-added", "text-drawn-on-page"])
def test_content_added_in_a_later_revision_is_invalid(signed_once: bytes, pki: Pki,
                                                      tamper: object) -> None:
    assert callable(tamper)
    tampered = tamper(signed_once)
    report = validate_pdf(tampered, [pki.ca.certificate], now=CHECK_AT)[0]
    # The signed bytes are untouched, so only the difference analysis can catch this.
    assert report.intact
    assert report.status == "INVALID"
    assert report.summary.endswith("the document was changed after this signature (content "
                                   "added in a later revision).")
    assert _pyhanko_bottom_lines(tampered, pki) == [False]


@pytest.mark.req("SIG-3")
def test_signature_moved_into_another_document_is_invalid(jane: PadesSigner,
                                                          signed_once: bytes,
                                                          pki: Pki) -> None:
    other = jane.sign(BytesIO(make_pdf(1, title="Informed consent form")), manifestation())
    transplanted = _transplant_signature(donor=signed_once, recipient=other)
    report = validate_pdf(transplanted, [pki.ca.certificate], now=CHECK_AT)[0]
    assert report.status == "INVALID"
    assert "copied from another document" in report.summary
    assert _pyhanko_bottom_lines(transplanted, pki) == [False]


@pytest.mark.req("SIG-3")
def test_untampered_signature_is_valid_to_pdfsig_with_our_ca_trusted(
        signed_once: bytes, nss_db: Path, tmp_path: Path) -> None:
    out = pdfsig(write(tmp_path, "signed.pdf", signed_once), nss_db)
    assert "Signature Validation: Signature is Valid." in out
    assert "Certificate Validation: Certificate is Trusted." in out


@pytest.mark.req("SIG-3")
def test_second_signature_keeps_the_first_valid(signed_once: bytes, bob: PadesSigner,
                                                pki: Pki, nss_db: Path,
                                                tmp_path: Path) -> None:
    twice = bob.sign(BytesIO(signed_once), manifestation(
        signer_name="Bob Reviewer", signer_email="bob.reviewer@example.org", meaning="Review",
        signed_at=T0 + timedelta(minutes=5), auth_time=T0 + timedelta(minutes=5)))
    reports = validate_pdf(twice, [pki.ca.certificate], now=CHECK_AT)
    assert [(r.signer_name, r.status) for r in reports] == [
        ("Dr Jane Smith", "VALID"), ("Bob Reviewer", "VALID")]
    assert reports[0].summary.endswith("only further signatures were added since.")
    assert _pyhanko_bottom_lines(twice, pki) == [True, True]
    out = pdfsig(write(tmp_path, "twice.pdf", twice), nss_db)
    assert out.count("Signature Validation: Signature is Valid.") == 2
    assert out.count("Certificate Validation: Certificate is Trusted.") == 2


def test_signature_from_an_unknown_ca_is_untrusted(signed_once: bytes) -> None:
    report = validate_pdf(signed_once, [], now=CHECK_AT)[0]
    assert report.status == "UNTRUSTED" and report.intact
    assert report.summary.startswith("UNTRUSTED: signed by Dr Jane Smith")

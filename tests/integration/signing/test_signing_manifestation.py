"""The visible stamp and the signature dictionary say the same thing (SIG-1, SIG-2, SIG-4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from etmf.signing.errors import EncryptedPdf, InvalidManifestation, NotAPdf
from etmf.signing.manifestation import SignatureManifestation
from etmf.signing.pades import PadesSigner, slot_box
from etmf.signing.validation import validate_pdf

from .helpers import CHECK_AT, T0, Pki, manifestation, pdftotext, write


def _signature_dict(pdf: bytes, index: int = 0) -> dict[str, object]:
    reader = PdfFileReader(BytesIO(pdf))
    sig = reader.embedded_regular_signatures[index]
    return {"sig": sig.sig_object, "cms_time": sig.self_reported_timestamp}


@pytest.mark.req("SIG-1")
def test_signed_pdf_shows_printed_name_utc_time_and_meaning(signed_once: bytes,
                                                             tmp_path: Path) -> None:
    text = pdftotext(write(tmp_path, "signed.pdf", signed_once))
    assert "Electronically signed by: Dr Jane Smith" in text
    assert "Date and time: 2026-11-20 09:00:00 UTC" in text
    assert "Meaning: Approval" in text
    assert "Document: DOC-0042, version 2.0" in text


@pytest.mark.req("SIG-1")
def test_stamp_is_on_a_manifest_page_appended_after_the_content(
        jane: PadesSigner, multi_page_pdf: bytes, tmp_path: Path) -> None:
    signed = jane.sign(BytesIO(multi_page_pdf), manifestation(meaning="Investigator attestation"))
    reader = PdfFileReader(BytesIO(signed))
    assert reader.root["/Pages"]["/Count"] == 6
    text = pdftotext(write(tmp_path, "signed.pdf", signed))
    pages = text.split("\f")
    assert "page 5 of 5" in pages[4]
    assert "Electronic signature manifest" in pages[5]
    assert "Meaning: Investigator attestation" in pages[5]


@pytest.mark.req("SIG-1")
def test_stamp_is_inside_the_signed_revision(signed_once: bytes, jane: PadesSigner,
                                             pki: Pki) -> None:
    # The stamp and its page come with the signature itself: the signature covers them.
    reports = validate_pdf(signed_once, [pki.ca.certificate], now=CHECK_AT)
    assert reports[0].coverage == "ENTIRE_FILE"
    assert reports[0].status == "VALID"


@pytest.mark.req("SIG-2")
@pytest.mark.req("SIG-4")
def test_signature_dictionary_agrees_with_the_manifestation(signed_once: bytes) -> None:
    found = _signature_dict(signed_once)
    sig = found["sig"]
    assert isinstance(sig, dict)
    assert sig["/Name"] == "Dr Jane Smith"
    assert sig["/Reason"] == "Approval"
    assert sig["/M"] == "D:20261120090000Z"  # PDF date syntax, Z = UTC
    assert sig["/Prop_AuthType"] == "password+totp"
    assert sig["/Prop_AuthTime"] == 42
    # The CMS signing-time attribute carries the same instant as /M and the stamp.
    assert found["cms_time"] == T0


@pytest.mark.req("SIG-4")
def test_authentication_in_the_same_second_is_still_recorded(jane: PadesSigner,
                                                            one_page_pdf: bytes) -> None:
    signed = jane.sign(BytesIO(one_page_pdf), manifestation(auth_time=T0))
    report = validate_pdf(signed, [], now=CHECK_AT)[0]
    assert (report.auth_type, report.auth_seconds) == ("password+totp", 0)


@pytest.mark.req("SIG-2")
def test_validation_report_reads_back_name_time_and_meaning(signed_once: bytes,
                                                           pki: Pki) -> None:
    report = validate_pdf(signed_once, [pki.ca.certificate], now=CHECK_AT)[0]
    assert (report.signer_name, report.signing_time, report.meaning) == (
        "Dr Jane Smith", T0, "Approval")
    assert report.level == "PAdES B-B"
    assert report.summary == ("Valid: signed by Dr Jane Smith on 2026-11-20 09:00 UTC for "
                              "'Approval'; the document has not changed since.")


def test_each_signature_gets_its_own_field_and_stamp_box(signed_once: bytes,
                                                         bob: PadesSigner) -> None:
    twice = bob.sign(BytesIO(signed_once), manifestation(
        signer_name="Bob Reviewer", meaning="Review", signed_at=T0 + timedelta(minutes=5),
        auth_time=T0 + timedelta(minutes=4)))
    reader = PdfFileReader(BytesIO(twice))
    sigs = reader.embedded_regular_signatures
    assert len({s.field_name for s in sigs}) == 2
    assert reader.root["/Pages"]["/Count"] == 2, "the second signature must not add a page"
    assert sigs[0].sig_field.raw_get("/P") == sigs[1].sig_field.raw_get("/P")
    rects = [[float(v) for v in s.sig_field["/Rect"]] for s in sigs]
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = rects
    assert ay2 <= by1 or by2 <= ay1 or ax2 <= bx1 or bx2 <= ax1, "stamps overlap"


def test_manifest_page_refuses_more_signatures_than_it_has_slots() -> None:
    with pytest.raises(Exception, match="most its signature manifest page can show"):
        slot_box(99)


def test_naive_signing_time_is_refused() -> None:
    with pytest.raises(InvalidManifestation, match="time zone"):
        manifestation(signed_at=datetime(2026, 11, 20, 9, 0))


def test_authentication_after_signing_is_refused() -> None:
    with pytest.raises(InvalidManifestation, match="authenticated after the signing time"):
        manifestation(auth_time=T0 + timedelta(seconds=1))


def test_name_the_stamp_cannot_print_is_refused_rather_than_garbled() -> None:
    with pytest.raises(InvalidManifestation, match="cannot print"):
        manifestation(signer_name="Dr 王小明")


def test_accented_names_and_typographic_apostrophes_are_printed(jane: PadesSigner,
                                                                one_page_pdf: bytes,
                                                                tmp_path: Path) -> None:
    signed = jane.sign(BytesIO(one_page_pdf), manifestation(signer_name="Dr Zoë O\u2019Brien"))
    assert "Electronically signed by: Dr Zoë O'Brien" in pdftotext(
        write(tmp_path, "s.pdf", signed))


def test_signing_time_is_kept_in_utc_whatever_zone_is_given() -> None:
    cet = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Brussels"))
    m: SignatureManifestation = manifestation(signed_at=cet, auth_time=cet)
    assert m.signed_at.tzinfo == UTC and m.signed_at.hour == 10


def test_a_file_that_is_not_a_pdf_is_refused(jane: PadesSigner) -> None:
    with pytest.raises(NotAPdf, match="not a PDF"):
        jane.sign(BytesIO(b"PK\x03\x04 this is a zip"), manifestation())


def test_an_encrypted_pdf_is_refused(jane: PadesSigner, one_page_pdf: bytes) -> None:
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(BytesIO(one_page_pdf)))
    writer.encrypt("owner-secret", "user-secret")
    out = BytesIO()
    writer.write(out)
    with pytest.raises(EncryptedPdf, match="encrypted"):
        jane.sign(BytesIO(out.getvalue()), manifestation())

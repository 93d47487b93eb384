"""PAdES levels with a real time-stamping authority over HTTP; never a silent downgrade (SIG-9)."""

from __future__ import annotations

import socket
from io import BytesIO

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

from etmf.signing.errors import SigningError, TimestampUnavailable
from etmf.signing.manifestation import PadesLevel
from etmf.signing.pades import PadesSigner
from etmf.signing.validation import validate_pdf

from .helpers import CHECK_AT, T0, Pki, Tsa, manifestation


@pytest.fixture(scope="module")
def long_term_signer(pki: Pki, tsa: Tsa) -> PadesSigner:
    """A signer that embeds our CA's current CRL and trusts the TSA's root at B-LT/B-LTA."""
    return pki.enrol("lta-signer", "Dr Ana Long", "ana.long@example.org",
                     trust_roots=[pki.ca.certificate, tsa.root],
                     crls=lambda: [pki.ca.build_crl(T0)])


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


@pytest.mark.req("SIG-9")
def test_without_a_tsa_the_signature_is_labelled_b_b(signed_once: bytes, pki: Pki) -> None:
    report = validate_pdf(signed_once, [pki.ca.certificate], now=CHECK_AT)[0]
    assert report.level == "PAdES B-B"
    assert report.timestamp_time is None


@pytest.mark.req("SIG-9")
def test_with_a_tsa_the_signature_reaches_b_t(jane: PadesSigner, one_page_pdf: bytes, tsa: Tsa,
                                              pki: Pki) -> None:
    signed = jane.sign(BytesIO(one_page_pdf), manifestation(),
                       timestamper=RequestsHTTPTimeStamper(tsa.url), level="B-T")
    report = validate_pdf(signed, [pki.ca.certificate, tsa.root], now=CHECK_AT)[0]
    assert (report.status, report.level) == ("VALID", "PAdES B-T")
    assert report.timestamp_time is not None and report.timestamp_time > T0


@pytest.mark.req("SIG-9")
@pytest.mark.parametrize(("level", "document_timestamps"), [("B-LT", 0), ("B-LTA", 1)])
def test_long_term_levels_embed_revocation_data(long_term_signer: PadesSigner,
                                                one_page_pdf: bytes, tsa: Tsa, pki: Pki,
                                                level: PadesLevel,
                                                document_timestamps: int) -> None:
    signed = long_term_signer.sign(BytesIO(one_page_pdf),
                                   manifestation(signer_name="Dr Ana Long"),
                                   timestamper=RequestsHTTPTimeStamper(tsa.url), level=level)
    reader = PdfFileReader(BytesIO(signed))
    assert "/CRLs" in reader.root["/DSS"]
    assert len(reader.embedded_timestamp_signatures) == document_timestamps
    report = validate_pdf(signed, [pki.ca.certificate, tsa.root],
                          crls=[pki.ca.build_crl(T0)], now=CHECK_AT)[0]
    assert (report.status, report.level) == ("VALID", f"PAdES {level}")
    assert report.summary.endswith("only long-term validation data was added since.")


@pytest.mark.req("SIG-9")
def test_unreachable_tsa_raises_instead_of_downgrading(jane: PadesSigner,
                                                       one_page_pdf: bytes) -> None:
    dead = RequestsHTTPTimeStamper(f"http://127.0.0.1:{_closed_loopback_port()}/tsa", timeout=2)
    with pytest.raises(TimestampUnavailable, match="the document was not signed"):
        jane.sign(BytesIO(one_page_pdf), manifestation(), timestamper=dead, level="B-T")


@pytest.mark.req("SIG-9")
def test_asking_for_a_timestamped_level_without_a_tsa_is_refused(jane: PadesSigner,
                                                                 one_page_pdf: bytes) -> None:
    with pytest.raises(TimestampUnavailable, match="needs a time-stamping authority"):
        jane.sign(BytesIO(one_page_pdf), manifestation(), level="B-LT")


def test_a_tsa_with_level_b_b_is_refused_so_the_label_stays_true(
        jane: PadesSigner, one_page_pdf: bytes, tsa: Tsa) -> None:
    with pytest.raises(SigningError, match="ask for 'B-T'"):
        jane.sign(BytesIO(one_page_pdf), manifestation(),
                  timestamper=RequestsHTTPTimeStamper(tsa.url), level="B-B")

"""The system CA, user certificates, keys at rest and revocation."""

from __future__ import annotations

import stat
from datetime import timedelta
from io import BytesIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etmf.signing.ca import IETF_DOCUMENT_SIGNING, MS_DOCUMENT_SIGNING, CertificateAuthority
from etmf.signing.errors import CertificateRevoked, KeyStoreError
from etmf.signing.keystore import FileKeyStore
from etmf.signing.pades import PadesSigner
from etmf.signing.validation import validate_pdf

from .helpers import CRL_URL, PKI_BIRTH, SECRET, T0, Pki, manifestation


def test_ca_certificate_may_only_sign_certificates_and_crls(pki: Pki) -> None:
    cert = pki.ca.certificate
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical and basic.value.ca
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature


def test_user_certificate_names_the_user_and_is_for_document_signing(
        pki: Pki, jane: PadesSigner) -> None:
    cert = pki.keys.certificate("jane")
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Dr Jane Smith"
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "jane"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["jane.smith@example.org"]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.EMAIL_PROTECTION, MS_DOCUMENT_SIGNING,
                        IETF_DOCUMENT_SIGNING}
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(CRL_URL)]
    assert cert.issuer == pki.ca.certificate.subject


def test_serial_numbers_are_random_and_large(pki: Pki, jane: PadesSigner,
                                             bob: PadesSigner) -> None:
    serials = {jane.serial_number, bob.serial_number, pki.ca.certificate.serial_number}
    assert len(serials) == 3
    assert all(s.bit_length() > 64 for s in serials)


def test_keys_on_disk_are_encrypted_and_readable_only_by_the_owner(pki: Pki,
                                                                    jane: PadesSigner) -> None:
    for path in (pki.keys.key_path("jane"), pki.folder / "ca" / "ca.key.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # no passphrase, no key
            load_pem_private_key(pem, password=None)


def test_keys_cannot_be_opened_with_another_server_secret(pki: Pki, jane: PadesSigner) -> None:
    with pytest.raises(KeyStoreError, match="server secret changed"):
        FileKeyStore(pki.folder / "keys", b"another-secret-of-32-bytes-long!").signer(
            "jane", [pki.ca.certificate])


def test_the_ca_reopens_with_the_same_secret(pki: Pki) -> None:
    again = CertificateAuthority.open(pki.folder / "ca", server_secret=SECRET, crl_url=CRL_URL)
    assert again.certificate == pki.ca.certificate


def test_an_existing_ca_or_key_is_never_replaced(pki: Pki, jane: PadesSigner) -> None:
    with pytest.raises(KeyStoreError, match="never replaced"):
        CertificateAuthority.create(pki.folder / "ca", server_secret=SECRET, name="Other",
                                    crl_url=CRL_URL, now=PKI_BIRTH)
    with pytest.raises(KeyStoreError, match="never replaced"):
        pki.keys.generate_key("jane")


@pytest.mark.parametrize("bad_id", ["../ca/ca", "a/b", "", ".hidden", "x" * 65])
def test_key_ids_that_could_escape_the_key_folder_are_refused(pki: Pki, bad_id: str) -> None:
    with pytest.raises(KeyStoreError, match="is not allowed"):
        pki.keys.generate_key(bad_id)


def test_revoked_certificate_is_listed_in_the_signed_crl(pki: Pki) -> None:
    carol = pki.enrol("carol", "Carol Leaver", "carol@example.org")
    pki.ca.revoke(carol.serial_number, "key_compromise", T0 + timedelta(days=1))
    first = x509.load_der_x509_crl(pki.ca.build_crl(T0 + timedelta(days=2)))
    second = x509.load_der_x509_crl(pki.ca.build_crl(T0 + timedelta(days=3)))
    entry = first.get_revoked_certificate_by_serial_number(carol.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == T0 + timedelta(days=1)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise)
    assert first.is_signature_valid(pki.ca.certificate.public_key())  # type: ignore[arg-type]
    number = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number


def test_revoked_signer_cannot_sign_and_earlier_signatures_report_it(pki: Pki,
                                                                    one_page_pdf: bytes) -> None:
    dave = pki.enrol("dave", "Dave Departed", "dave@example.org")
    signed = dave.sign(BytesIO(one_page_pdf), manifestation(signer_name="Dave Departed"))
    pki.ca.revoke(dave.serial_number, "cessation_of_operation", T0 + timedelta(days=1))
    with pytest.raises(CertificateRevoked, match="has been revoked"):
        dave.sign(BytesIO(one_page_pdf), manifestation(signer_name="Dave Departed"))
    check_at = T0 + timedelta(days=2)
    report = validate_pdf(signed, [pki.ca.certificate], crls=[pki.ca.build_crl(check_at)],
                          now=check_at)[0]
    assert report.revoked and report.status == "REVOKED"
    assert report.summary.startswith("REVOKED: signed by Dave Departed")
    assert "revoked on 2026-11-21 09:00 UTC" in report.summary


def test_revoking_a_certificate_this_ca_never_issued_is_refused(pki: Pki) -> None:
    with pytest.raises(KeyStoreError, match="never issued"):
        pki.ca.revoke(12345, "superseded", T0)

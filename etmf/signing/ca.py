"""The system certificate authority: created at ``etmf init``, issues one certificate per user.

Certificate profile (and why):

* CA: RSA-3072 (it outlives user keys), basicConstraints CA:true pathlen 0 (it issues only
  end-entity certificates), keyUsage keyCertSign + cRLSign, both critical.
* Users: RSA-2048, keyUsage digitalSignature + contentCommitment (nonRepudiation), critical:
  the signature commits the signer to the content. extendedKeyUsage carries
  emailProtection, because NSS (and so poppler's ``pdfsig``) checks signer certificates for it,
  plus Microsoft/Adobe documentSigning (1.3.6.1.4.1.311.10.3.12) and the IETF
  id-kp-documentSigning (1.3.6.1.5.5.7.3.36, RFC 9336), which state the real purpose.
  Subject: CN = printed name, UID = user id; the e-mail is in subjectAltName (RFC 5280).
  A CRL distribution point names the URL where the server publishes :meth:`build_crl`.
* Serial numbers are random 159-bit integers (RFC 5280 §4.1.2.2; CA/B guidance on entropy).

Revocations are kept in ``revocations.json`` beside the CA; a CRL number counter there makes
each published CRL's number strictly increase.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from etmf.signing.errors import CertificateRevoked, KeyStoreError, SigningError
from etmf.signing.keystore import (
    derive_passphrase,
    read_certificate,
    read_private_key,
    write_certificate,
    write_private_key,
)

MS_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")
IETF_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
CA_KEY_BITS = 3072

# Reasons are accepted by RFC 5280 name ("keyCompromise") or Python name ("key_compromise").
_REASONS = {flag.value: flag for flag in x509.ReasonFlags} | {
    flag.name: flag for flag in x509.ReasonFlags}


@dataclass(frozen=True)
class UserIdentity:
    """Who a certificate is for: the user record's id, printed name and e-mail."""

    user_id: str
    printed_name: str
    email: str


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate."""

    serial: int
    reason: x509.ReasonFlags
    revoked_at: datetime


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise SigningError(f"The {what} must be timezone-aware (UTC).")
    return moment.astimezone(UTC)


def _reason(reason: x509.ReasonFlags | str) -> x509.ReasonFlags:
    if isinstance(reason, x509.ReasonFlags):
        return reason
    try:
        return _REASONS[reason]
    except KeyError:
        raise SigningError(
            f"Unknown revocation reason {reason!r}; use one of "
            f"{sorted(flag.name for flag in x509.ReasonFlags)}."
        ) from None


class CertificateAuthority:
    """The instance's own CA. Create once with :meth:`create`, then :meth:`open` it."""

    def __init__(self, folder: Path, key: rsa.RSAPrivateKey, certificate: x509.Certificate,
                 crl_url: str) -> None:
        self._folder = folder
        self._key = key
        self.certificate = certificate
        self.crl_url = crl_url

    # -- creation and loading -------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, *, server_secret: bytes, name: str, crl_url: str,
               now: datetime, valid_for: timedelta = timedelta(days=20 * 365)
               ) -> CertificateAuthority:
        """Make a new CA key and self-signed certificate under ``folder``.

        Refuses to run twice on the same folder: replacing a CA would orphan every
        certificate it issued.
        """
        folder = Path(folder)
        now = _utc(now, "creation time")
        if (folder / "ca.key.pem").exists():
            raise KeyStoreError(f"A CA already exists in {folder}; keys are never replaced.")
        key = rsa.generate_private_key(public_exponent=65537, key_size=CA_KEY_BITS)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private_key(folder / "ca.key.pem", key, derive_passphrase(server_secret, "ca"))
        write_certificate(folder / "ca.cert.pem", cert)
        return cls(folder, key, cert, crl_url)

    @classmethod
    def open(cls, folder: Path, *, server_secret: bytes, crl_url: str) -> CertificateAuthority:
        """Load an existing CA (decrypting its key with the server secret)."""
        folder = Path(folder)
        key = read_private_key(folder / "ca.key.pem", derive_passphrase(server_secret, "ca"))
        return cls(folder, key, read_certificate(folder / "ca.cert.pem"), crl_url)

    # -- issuing ---------------------------------------------------------------------------

    def issue_user_certificate(self, identity: UserIdentity, public_key: rsa.RSAPublicKey, *,
                               now: datetime, valid_for: timedelta = timedelta(days=3 * 365)
                               ) -> x509.Certificate:
        """Issue a signing certificate for a user's public key (from a key store).

        The certificate is also kept under ``issued/`` so that revocation can check the
        serial is one of ours and an inspector can be shown every certificate ever issued.
        """
        now = _utc(now, "issuing time")
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, identity.printed_name),
            x509.NameAttribute(NameOID.USER_ID, identity.user_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                               self._organisation()),
        ])
        not_after = min(now + valid_for, self.certificate.not_valid_after_utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                  MS_DOCUMENT_SIGNING, IETF_DOCUMENT_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity.email)]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(self.crl_url)],
                relative_name=None, reasons=None, crl_issuer=None)]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        write_certificate(self._issued_path(cert.serial_number), cert)
        return cert

    def _organisation(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(names[0].value) if names else "eTMF"

    def _issued_path(self, serial: int) -> Path:
        return self._folder / "issued" / f"{serial:x}.cert.pem"

    def issued_certificate(self, serial: int) -> x509.Certificate:
        """A certificate this CA issued, by serial number."""
        return read_certificate(self._issued_path(serial))

    # -- revocation ------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self._folder / "revocations.json"

    def _load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_path().read_text())
        except FileNotFoundError:
            state = {"crl_number": 0, "revoked": {}}
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        # Write-then-rename so a crash never leaves a half-written revocation list.
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self._state_path())

    def revoke(self, serial: int, reason: x509.ReasonFlags | str, when: datetime) -> None:
        """Revoke a certificate this CA issued. Revoking twice keeps the first record."""
        when = _utc(when, "revocation time")
        if not self._issued_path(serial).exists():
            raise KeyStoreError(f"This CA never issued a certificate with serial {serial:x}.")
        flag = _reason(reason)
        state = self._load_state()
        state["revoked"].setdefault(f"{serial:x}", {"reason": flag.value,
                                                   "revoked_at": when.isoformat()})
        self._save_state(state)

    def revocations(self) -> list[Revocation]:
        """Every revocation recorded, oldest first."""
        items = [Revocation(int(serial, 16), _REASONS[entry["reason"]],
                            datetime.fromisoformat(entry["revoked_at"]))
                 for serial, entry in self._load_state()["revoked"].items()]
        return sorted(items, key=lambda r: r.revoked_at)

    def is_revoked(self, serial: int) -> bool:
        """Whether the certificate with this serial has been revoked."""
        return f"{serial:x}" in self._load_state()["revoked"]

    def check_can_sign(self, cert: x509.Certificate, now: datetime) -> None:
        """Refuse a revoked or expired certificate before it signs anything."""
        now = _utc(now, "signing time")
        if self.is_revoked(cert.serial_number):
            raise CertificateRevoked(
                f"The signing certificate {cert.serial_number:x} has been revoked; "
                "ask an administrator to issue a new one."
            )
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SigningError(
                f"The signing certificate {cert.serial_number:x} is not valid at {now:%Y-%m-%d}."
            )

    def build_crl(self, now: datetime, *, valid_for: timedelta = timedelta(days=7)) -> bytes:
        """Sign a fresh CRL (DER) listing every revocation; the server publishes it.

        Each call takes the next CRL number, as RFC 5280 requires numbers to increase.
        """
        now = _utc(now, "CRL time")
        state = self._load_state()
        state["crl_number"] = int(state["crl_number"]) + 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + valid_for)
            .add_extension(x509.CRLNumber(state["crl_number"]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
        )
        for revocation in self.revocations():
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.revoked_at)
            )
            if revocation.reason is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(self._key, hashes.SHA256())
        self._save_state(state)
        return crl.public_bytes(serialization.Encoding.DER)

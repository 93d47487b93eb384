"""Where signing keys live: encrypted files in the instance folder, or a PKCS#11 token.

Both stores hand out a ready pyHanko ``Signer`` for a key id, so :class:`PadesSigner` does not
care where the private key is. Keys are created in the store and never leave it in clear:
files hold PKCS#8 encrypted with a passphrase derived from the server secret (mode 0600); on a
token the key is generated non-extractable.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from etmf.signing.errors import KeyStoreError

USER_KEY_BITS = 2048
"""RSA-2048 for user keys: validated by pyHanko, poppler/NSS and every PDF reader in use, and
fast (0.5 ms a signature). Long-term validity comes from PAdES B-LTA timestamps, not key size."""

_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_key_id(key_id: str) -> str:
    """Refuse key ids that could escape the key folder or confuse a token's label search."""
    if not _KEY_ID.match(key_id) or ".." in key_id:
        raise KeyStoreError(
            f"Key id {key_id!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-'."
        )
    return key_id


def derive_passphrase(server_secret: bytes, purpose: str) -> bytes:
    """A per-key passphrase from the server secret (HKDF-SHA256), so no passphrase is stored.

    Different purposes give unrelated passphrases: learning one key's passphrase reveals
    nothing about another's.
    """
    if len(server_secret) < 16:
        raise KeyStoreError("The server secret is too short to protect signing keys "
                            "(at least 16 bytes are needed).")
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"etmf signing key v1:" + purpose.encode()).derive(server_secret)
    return base64.urlsafe_b64encode(okm)


def write_private_key(path: Path, key: rsa.RSAPrivateKey, passphrase: bytes) -> None:
    """Write ``key`` as encrypted PKCS#8 PEM, readable by the owner only, never overwriting."""
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: a second issuance for the same id must not silently replace a key
        # that earlier signatures were made with.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyStoreError(f"A key already exists at {path}; keys are never replaced.") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())


def read_private_key(path: Path, passphrase: bytes) -> rsa.RSAPrivateKey:
    """Read an encrypted PKCS#8 key written by :func:`write_private_key`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(f"No signing key at {path}.") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(
            f"The key at {path} cannot be decrypted: the server secret changed or the file "
            "is damaged."
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyStoreError(f"The key at {path} is not an RSA key.")
    return key


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    """Write a certificate as PEM (public data; owner-writable, world-readable is fine)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def read_certificate(path: Path) -> x509.Certificate:
    """Read a PEM certificate."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"No certificate at {path}.") from exc


def to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    """pyHanko speaks asn1crypto; we speak cryptography. This is the bridge."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class KeyStore(Protocol):
    """Contract shared by :class:`FileKeyStore` and :class:`Pkcs11KeyStore`."""

    def generate_key(self, key_id: str) -> rsa.RSAPublicKey:
        """Create a new key pair under ``key_id`` and return its public half for the CA."""
        ...

    def store_certificate(self, key_id: str, cert: x509.Certificate) -> None:
        """Keep the certificate the CA issued for ``key_id`` beside its key."""
        ...

    def certificate(self, key_id: str) -> x509.Certificate:
        """The certificate stored for ``key_id``."""
        ...

    def signer(self, key_id: str, chain: Sequence[x509.Certificate]) -> Signer:
        """A pyHanko signer for ``key_id``; ``chain`` is the issuing CA chain to embed."""
        ...


class FileKeyStore:
    """Per-user keys as encrypted PKCS#8 files under one folder (the embedded default)."""

    def __init__(self, folder: Path, server_secret: bytes) -> None:
        self._folder = Path(folder)
        self._secret = server_secret

    def key_path(self, key_id: str) -> Path:
        """Path of the encrypted key file for ``key_id``."""
        return self._folder / f"{check_key_id(key_id)}.key.pem"

    def _cert_path(self, key_id: str) -> Path:
        return self._folder / f"{check_key_id(key_id)}.cert.pem"

    def _public_path(self, key_id: str) -> Path:
        return self._folder / f"{check_key_id(key_id)}.pub.pem"

    def _passphrase(self, key_id: str) -> bytes:
        return derive_passphrase(self._secret, f"user-key:{key_id}")

    def generate_key(self, key_id: str) -> rsa.RSAPublicKey:
        """Create an RSA key for ``key_id``, write it encrypted (0600), return the public key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=USER_KEY_BITS)
        write_private_key(self.key_path(key_id), key, self._passphrase(key_id))
        # The public half in clear, so certificates can be matched without decrypting.
        self._public_path(key_id).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return key.public_key()

    def store_certificate(self, key_id: str, cert: x509.Certificate) -> None:
        """Store the issued certificate; it must belong to the stored key."""
        try:
            public = serialization.load_pem_public_key(self._public_path(key_id).read_bytes())
        except FileNotFoundError as exc:
            raise KeyStoreError(f"No key {key_id!r} in this key store.") from exc
        if public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo) != (
                cert.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)):
            raise KeyStoreError(f"The certificate does not belong to key {key_id!r}.")
        write_certificate(self._cert_path(key_id), cert)

    def certificate(self, key_id: str) -> x509.Certificate:
        """The certificate stored for ``key_id``."""
        return read_certificate(self._cert_path(key_id))

    def signer(self, key_id: str, chain: Sequence[x509.Certificate]) -> SimpleSigner:
        """Decrypt and parse the key once and wrap it for pyHanko.

        Keep the returned signer (or the PadesSigner around it) for many signatures: the
        parse and decryption are the expensive part of a default pyHanko call.
        """
        return ParsedKeySigner(
            self.certificate(key_id),
            read_private_key(self.key_path(key_id), self._passphrase(key_id)),
            chain,
        )


class ParsedKeySigner(SimpleSigner):
    """pyHanko's SimpleSigner, but signing with a key parsed once.

    SimpleSigner re-parses its DER key (with RSA consistency checks, ~85 ms) on every
    signature; we keep the ``cryptography`` key object and use it directly for PKCS#1 v1.5,
    the mechanism our RSA certificates use. Other mechanisms fall back to pyHanko's code.
    """

    def __init__(self, cert: x509.Certificate, key: rsa.RSAPrivateKey,
                 chain: Sequence[x509.Certificate]) -> None:
        key_der = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        super().__init__(
            signing_cert=to_asn1_cert(cert),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [to_asn1_cert(c) for c in chain]),
        )
        self._private_key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """Sign ``data`` with the kept key (PKCS#1 v1.5), as pyHanko's signer would."""
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        if mechanism.signature_algo != "rsassa_pkcs1v15":
            return bytes(super().sign_raw(data, digest_algorithm))
        return self._private_key.sign(data, PKCS1v15(),
                                      get_pyca_cryptography_hash(digest_algorithm))


class Pkcs11KeyStore:
    """Keys generated and kept on a PKCS#11 token or HSM (SoftHSM2 in tests).

    The private key is created with CKA_SENSITIVE and without CKA_EXTRACTABLE, so it never
    leaves the token; signing happens on the token through pyHanko's ``PKCS11Signer``.
    One session is opened at construction and shared; call :meth:`close` when done.
    """

    def __init__(self, module_path: str, token_label: str, user_pin: str) -> None:
        import pkcs11  # imported here: python-pkcs11 is only needed where a token is used

        try:
            lib = pkcs11.lib(module_path)
            token = lib.get_token(token_label=token_label)
            self._session: Any = token.open(user_pin=user_pin, rw=True)
        except (pkcs11.PKCS11Error, RuntimeError) as exc:
            raise KeyStoreError(
                f"Cannot open PKCS#11 token {token_label!r} with module {module_path}: "
                f"{type(exc).__name__} {exc}"
            ) from exc

    def close(self) -> None:
        """Close the token session."""
        self._session.close()

    def __enter__(self) -> Pkcs11KeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def generate_key(self, key_id: str) -> rsa.RSAPublicKey:
        """Generate a non-extractable RSA key pair on the token, labelled ``key_id``."""
        from pkcs11 import Attribute, KeyType, ObjectClass

        label = check_key_id(key_id)
        if list(self._session.get_objects({Attribute.LABEL: label,
                                           Attribute.CLASS: ObjectClass.PRIVATE_KEY})):
            raise KeyStoreError(f"The token already holds a key labelled {label!r}.")
        public, _private = self._session.generate_keypair(
            KeyType.RSA, USER_KEY_BITS, label=label, id=label.encode(), store=True,
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                              Attribute.SIGN: True},
        )
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()

    def store_certificate(self, key_id: str, cert: x509.Certificate) -> None:
        """Store the certificate on the token beside its key (same label and id)."""
        from pkcs11 import Attribute, CertificateType, ObjectClass

        label = check_key_id(key_id)
        self._session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.LABEL: label,
            Attribute.ID: label.encode(),
            Attribute.SUBJECT: cert.subject.public_bytes(),
            Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
        })

    def certificate(self, key_id: str) -> x509.Certificate:
        """Read the certificate stored on the token for ``key_id``."""
        from pkcs11 import Attribute, ObjectClass

        found = list(self._session.get_objects({Attribute.LABEL: check_key_id(key_id),
                                                Attribute.CLASS: ObjectClass.CERTIFICATE}))
        if not found:
            raise KeyStoreError(f"The token holds no certificate labelled {key_id!r}.")
        return x509.load_der_x509_certificate(bytes(found[0][Attribute.VALUE]))

    def signer(self, key_id: str, chain: Sequence[x509.Certificate]) -> Signer:
        """A pyHanko PKCS#11 signer using the token key labelled ``key_id``."""
        from pyhanko.sign.pkcs11 import PKCS11Signer

        return PKCS11Signer(
            self._session,
            key_label=check_key_id(key_id),
            signing_cert=to_asn1_cert(self.certificate(key_id)),
            ca_chain=[to_asn1_cert(c) for c in chain],
        )

"""Shared builders for the signing tests: PDFs, manifestations, a PKI, a TSA, pdfsig/pdftotext."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from etmf.signing.ca import CertificateAuthority, UserIdentity
from etmf.signing.keystore import FileKeyStore
from etmf.signing.manifestation import SignatureManifestation
from etmf.signing.pades import PadesSigner

T0 = datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)
"""The signing time used throughout: a fixed instant, never the wall clock."""
CHECK_AT = T0 + timedelta(hours=1)
"""The validation time passed to validate_pdf."""
# Certificates are valid from long before T0 to long after, so that pdfsig (which checks at
# the current time) agrees on whatever day the suite runs.
PKI_BIRTH = datetime(2020, 1, 1, tzinfo=UTC)
SECRET = b"test-server-secret-0123456789abcdef"
CRL_URL = "http://127.0.0.1/pki/crl.der"


def make_pdf(pages: int, title: str = "Clinical study protocol") -> bytes:
    """A small text PDF made with reportlab."""
    out = BytesIO()
    # Uncompressed page streams, so a test can find and flip a byte of visible text.
    page = canvas.Canvas(out, pagesize=letter, pageCompression=0)
    for number in range(1, pages + 1):
        page.drawString(72, 720, f"{title} - page {number} of {pages}")
        page.drawString(72, 700, "Inclusion criteria: adults aged 18 to 65.")
        page.showPage()
    page.save()
    return out.getvalue()


def manifestation(**changes: Any) -> SignatureManifestation:
    """Dr Jane Smith approving DOC-0042 v2.0 at T0, after password+TOTP 42 s earlier."""
    base = SignatureManifestation(
        signer_name="Dr Jane Smith",
        signer_email="jane.smith@example.org",
        meaning="Approval",
        signed_at=T0,
        document_id="DOC-0042",
        version_label="2.0",
        auth_method="password+totp",
        auth_time=T0 - timedelta(seconds=42),
    )
    return replace(base, **changes)


@dataclass
class Pki:
    """The test CA, the file key store and the CRL-aware signer factory."""

    folder: Path
    ca: CertificateAuthority
    keys: FileKeyStore

    def enrol(self, user_id: str, name: str, email: str, **signer_args: Any) -> PadesSigner:
        """Create a key and certificate for a user and return their signer."""
        public = self.keys.generate_key(user_id)
        cert = self.ca.issue_user_certificate(UserIdentity(user_id, name, email), public,
                                              now=PKI_BIRTH, valid_for=timedelta(days=40 * 365))
        self.keys.store_certificate(user_id, cert)
        return PadesSigner(self.keys.signer(user_id, [self.ca.certificate]),
                           is_revoked=self.ca.is_revoked, **signer_args)


def make_pki(folder: Path) -> Pki:
    ca = CertificateAuthority.create(folder / "ca", server_secret=SECRET, name="eTMF Test CA",
                                     crl_url=CRL_URL, now=PKI_BIRTH,
                                     valid_for=timedelta(days=60 * 365))
    return Pki(folder, ca, FileKeyStore(folder / "keys", SECRET))


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Keep the test output free of one access-log line per time-stamp."""


@dataclass
class Tsa:
    """A certomancer time-stamping authority served over HTTP on 127.0.0.1."""

    url: str
    root: x509.Certificate
    server: BaseWSGIServer


def start_tsa(folder: Path, at: datetime) -> Tsa:
    """Serve a TSA (EC P-256 root and TSA keys, made here) that stamps the fixed time ``at``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("root", "tsa"):
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{name}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    validity = {"valid-from": "2020-01-01T00:00:00+0000", "valid-to": "2100-01-01T00:00:00+0000"}
    config = {
        "keysets": {"tsa": {"keys": {"root": {"path": "root.key.pem"},
                                     "tsa": {"path": "tsa.key.pem"}}}},
        "pki-architectures": {"test": {
            "keyset": "tsa",
            "entity-defaults": {"country-name": "BE", "organization-name": "eTMF Test TSA"},
            "entities": {"root": {"common-name": "Test TSA Root"},
                         "tsa": {"common-name": "Test TSA"}},
            "certs": {
                "root": {"subject": "root", "issuer": "root", "validity": validity,
                         "extensions": [
                             {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                             {"id": "key_usage", "critical": True, "smart-value": {
                                 "schema": "key-usage",
                                 "params": ["digital_signature", "key_cert_sign", "crl_sign"]}}]},
                "tsa": {"issuer": "root", "validity": validity, "extensions": [
                    {"id": "key_usage", "critical": True, "smart-value": {
                        "schema": "key-usage", "params": ["digital_signature"]}},
                    {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]}]},
            },
            "services": {"time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}}},
        }},
    }
    cfg = CertomancerConfig(config, key_search_dir=str(folder))
    app = Animator(AnimatorArchStore(cfg.pki_archs), at_time=at, with_web_ui=False)
    server = make_server("127.0.0.1", 0, app, request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = cfg.get_pki_arch("test").get_cert("root")
    return Tsa(url=f"http://127.0.0.1:{server.server_port}/test/tsa/tsa",
               root=x509.load_der_x509_certificate(root.dump()), server=server)


@contextmanager
def running_tsa(folder: Path, at: datetime) -> Iterator[Tsa]:
    """A TSA (see :func:`start_tsa`) for the length of the ``with`` block."""
    service = start_tsa(folder, at)
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def pdftotext(path: Path) -> str:
    """Text of the PDF as poppler extracts it (what a reader sees and searches)."""
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def make_nss_db(folder: Path, ca: x509.Certificate) -> Path:
    """An NSS database trusting ``ca``, for pdfsig."""
    folder.mkdir(parents=True, exist_ok=True)
    pem = write(folder, "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True,
                   capture_output=True, timeout=30)
    subprocess.run(["certutil", "-A", "-d", f"sql:{folder}", "-n", "eTMF Test CA",
                    "-t", "CT,C,C", "-a", "-i", str(pem)], check=True, capture_output=True,
                   timeout=30)
    return folder


def pdfsig(path: Path, nss_db: Path) -> str:
    """pdfsig's report (its exit status is non-zero for invalid signatures; we read the text)."""
    return subprocess.run(["pdfsig", "-no-ocsp", "-nssdir", f"sql:{nss_db}", str(path)],
                          capture_output=True, text=True, timeout=30).stdout

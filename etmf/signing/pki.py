"""The instance's signing infrastructure, wired from the settings: the system CA, the key
store (files or PKCS#11), a cache of ready signers (parsed keys are kept), the time-stamper
and the trust anchors used to validate. One set per app, kept in ``Services.extras``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509

from etmf.settings import Settings
from etmf.signing.ca import CertificateAuthority
from etmf.signing.errors import KeyStoreError
from etmf.signing.keystore import FileKeyStore, KeyStore, Pkcs11KeyStore
from etmf.signing.manifestation import PadesLevel
from etmf.signing.pades import PadesSigner

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

    from etmf.bootstrap import Services

T = TypeVar("T")
CA_NAME = "eTMF Signing CA"
_lock = threading.Lock()


def crl_url(settings: Settings) -> str:
    return settings.server_name_for_mail.rstrip("/") + "/pki/crl.der"


def _secret(settings: Settings) -> bytes:
    return settings.secret_key.encode("utf-8")


def ensure_ca(settings: Settings, now: datetime) -> bool:
    """Create the system CA if the instance has none; True if it was created now."""
    folder = settings.signing_ca_path
    if (folder / "ca.key.pem").exists():
        return False
    try:
        CertificateAuthority.create(folder, server_secret=_secret(settings), name=CA_NAME,
                                    crl_url=crl_url(settings), now=now)
    except KeyStoreError:
        if (folder / "ca.key.pem").exists():  # another process created it first
            return False
        raise
    return True


def _extras(svc: Services) -> dict[str, Any]:
    return svc.extras.setdefault("signing", {})


def authority(svc: Services) -> CertificateAuthority:
    """The system CA (created on first use if `etmf init` did not create it)."""
    cache = _extras(svc)
    ca = cache.get("ca")
    if ca is None:
        with _lock:
            ensure_ca(svc.settings, svc.clock.now())
            ca = cache["ca"] = CertificateAuthority.open(
                svc.settings.signing_ca_path, server_secret=_secret(svc.settings),
                crl_url=crl_url(svc.settings))
    return ca  # type: ignore[no-any-return]


def keystore(svc: Services) -> KeyStore:
    cache = _extras(svc)
    store = cache.get("keystore")
    if store is None:
        s = svc.settings
        with _lock:
            if s.signing_keystore == "pkcs11":
                store = Pkcs11KeyStore(s.pkcs11_module, s.pkcs11_token, s.pkcs11_pin)
            else:
                store = FileKeyStore(s.user_keys_path, _secret(s))
            cache["keystore"] = store
    return store  # type: ignore[no-any-return]


def tsa_roots(settings: Settings) -> list[x509.Certificate]:
    if not settings.tsa_root_cert:
        return []
    try:
        return x509.load_pem_x509_certificates(Path(settings.tsa_root_cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyStoreError(
            f"ETMF_TSA_ROOT_CERT {settings.tsa_root_cert} cannot be read as PEM: {exc}") from exc


def trust_roots(svc: Services) -> list[x509.Certificate]:
    return [authority(svc).certificate, *tsa_roots(svc.settings)]


def current_crls(svc: Services) -> Sequence[bytes]:
    return [authority(svc).build_crl(svc.clock.now())]


def signer(svc: Services, key_id: str) -> PadesSigner:
    """A ready signer for ``key_id``: key decrypted and parsed once, then kept."""
    cache = _extras(svc).setdefault("signers", {})
    found = cache.get(key_id)
    if found is None:
        ca = authority(svc)
        found = PadesSigner(
            keystore(svc).signer(key_id, [ca.certificate]),
            trust_roots=trust_roots(svc), crls=lambda: current_crls(svc),
            is_revoked=ca.is_revoked)
        cache[key_id] = found
    return found  # type: ignore[no-any-return]


def signature_level(settings: Settings) -> PadesLevel:
    """B-B without a time-stamping authority, else the configured timestamped level."""
    if not settings.tsa_url:
        return "B-B"
    return settings.signature_level  # type: ignore[return-value]


def timestamper(settings: Settings) -> TimeStamper | None:
    if not settings.tsa_url:
        return None
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    return RequestsHTTPTimeStamper(settings.tsa_url, timeout=10)


def off_event_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` where pyHanko can use ``asyncio.run``: in this thread normally, in a
    short-lived worker thread when this thread already runs an event loop (an async server,
    or a test driving Playwright's sync API builds the demo)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etmf-sign") as pool:
        return pool.submit(fn).result()

"""RFC 3161 time-stamp tokens on audit checkpoints.

With a time-stamping authority configured (``ETMF_TSA_URL``), every checkpoint carries a
token over its signature (``etmf.audit.checkpoint.timestamp_imprint``): an independent
witness that the tree head, and so every event it covers, existed at that time — even
if the system key were later compromised. ``etmf audit verify`` checks each token: the
imprint matches the checkpoint, the TSA's signature is intact, and (with
``ETMF_TSA_ROOT_CERT``) its certificate chains to the configured root.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from asn1crypto import cms, pem
from asn1crypto import x509 as asn1_x509

from etmf.audit.checkpoint import SignedTreeHead, attach_timestamp, timestamp_imprint
from etmf.settings import Settings


class TimestampFailed(Exception):
    """The time-stamping authority did not answer with a token."""


def stamp(settings: Settings, sth: SignedTreeHead) -> SignedTreeHead:
    """``sth`` with a token from the configured TSA; unchanged when none is configured."""
    if not settings.tsa_url:
        return sth
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    from etmf.signing.pki import off_event_loop

    client = RequestsHTTPTimeStamper(settings.tsa_url, timeout=10)
    try:
        token = off_event_loop(lambda: asyncio.run(
            client.async_timestamp(timestamp_imprint(sth), "sha256")))
    except Exception as exc:  # I/O or a refusal: the checkpoint job fails and is retried
        raise TimestampFailed(f"The time-stamping authority at {settings.tsa_url} gave no "
                              f"token for the checkpoint: {exc}") from exc
    return attach_timestamp(sth, token.dump())


def check(settings: Settings, sth: SignedTreeHead) -> str | None:
    """What is wrong with the checkpoint's token, or None when it checks (or has none)."""
    if sth.timestamp_token is None:
        return None
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    from etmf.signing.pki import off_event_loop

    try:
        info = cms.ContentInfo.load(base64.b64decode(sth.timestamp_token))
        signed = info["content"]
        roots = []
        if settings.tsa_root_cert:
            roots = [asn1_x509.Certificate.load(der) for _kind, _headers, der in
                     pem.unarmor(Path(settings.tsa_root_cert).read_bytes(), multiple=True)]
        context = ValidationContext(trust_roots=roots or None, allow_fetching=False)
        expected = timestamp_imprint(sth)
        status = off_event_loop(lambda: asyncio.run(validate_tst_signed_data(
            signed, context, lambda algorithm: expected if algorithm == "sha256" else b"")))
    except Exception as exc:
        return f"its time-stamp token cannot be read or checked ({exc})"
    if not status.get("intact"):
        return "its time-stamp token does not cover this checkpoint's signature"
    if not status.get("valid"):
        return "the signature on its time-stamp token is not valid"
    if settings.tsa_root_cert and status.get("trust_problem_indic") is not None:
        return "its time-stamp token is not from the configured time-stamping authority"
    return None

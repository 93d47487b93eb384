"""Errors of the signing core, each with a message a person can act on.

They derive from :class:`etmf.errors.SignatureError` so that the web layer maps them to a
readable page or JSON body in its one error handler.
"""

from __future__ import annotations

from etmf.errors import SignatureError


class SigningError(SignatureError):
    """Base of every error raised by ``etmf.signing``."""

    code = "signing_error"


class InvalidManifestation(SigningError):
    """The signature manifestation (name, time, meaning …) is incomplete or inconsistent."""

    code = "invalid_manifestation"


class TimestampUnavailable(SigningError):
    """The time-stamping authority could not be reached or refused the request.

    Raised instead of silently producing a lower PAdES level than the one asked for.
    """

    status = 503
    code = "timestamp_unavailable"
    title = "The time-stamping service is unavailable"


class CertificateRevoked(SigningError):
    """The signer's certificate has been revoked, so it must not sign anything more."""

    code = "certificate_revoked"


class NotAPdf(SigningError):
    """The bytes given are not a readable PDF file."""

    code = "not_a_pdf"


class EncryptedPdf(NotAPdf):
    """The PDF is encrypted; it cannot be stamped and signed without its password."""

    code = "encrypted_pdf"


class KeyStoreError(SigningError):
    """A signing key or certificate is missing, unreadable, or cannot be created."""

    code = "key_store_error"


class ManifestPageFull(SigningError):
    """The signature manifest page has no free slot left for another stamp."""

    code = "manifest_page_full"

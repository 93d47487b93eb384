"""The Part 11 signature manifestation and the one place it becomes pyHanko's objects.

A manifestation is what 21 CFR 11.50 asks a signed record to show: the signer's printed name,
the date and time of signing and the meaning of the signature. We carry with it how the signer
authenticated (11.200) and which document version was signed. Everything pyHanko needs to
write the signature dictionary, the CMS signing time and the visible stamp is derived here,
so that the stamp, /Name, /M, /Reason and /Prop_Auth* can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pyhanko.pdf_utils import generic
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata
from pyhanko_certvalidator import ValidationContext

from etmf.signing.errors import InvalidManifestation

PadesLevel = Literal["B-B", "B-T", "B-LT", "B-LTA"]
PADES_LEVELS: tuple[PadesLevel, ...] = ("B-B", "B-T", "B-LT", "B-LTA")

FIELD_PREFIX = "etmf-sig-"
"""Every signature field we create starts with this, so we can find our own stamps again."""

# The stamp uses a PDF standard font (no font file to embed), which covers Latin-1 only.
# Typographic quotes and dashes are common in names and meanings and have exact ASCII
# stand-ins; anything else outside Latin-1 is refused rather than printed as garbage.
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                              "\u2013": "-", "\u2014": "-", "\u00a0": " "})
_PRINTABLE_LATIN1 = re.compile(r"^[\x20-\x7e\xa1-\xff]*$")


def format_utc(moment: datetime) -> str:
    """Write a time the way the stamp shows it: ``2026-11-26 14:03:12 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _require_aware(name: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidManifestation(
            f"The {name} must carry a time zone (UTC); got a naive time {moment.isoformat()}."
        )
    return moment.astimezone(UTC)


def printable(text: str, what: str) -> str:
    """Return ``text`` as the stamp will print it, or refuse text the stamp font cannot show."""
    cleaned = " ".join(text.translate(_TYPOGRAPHIC).split())
    if not cleaned:
        raise InvalidManifestation(f"The {what} is empty; a signature must show it.")
    if not _PRINTABLE_LATIN1.match(cleaned):
        raise InvalidManifestation(
            f"The {what} {text!r} contains characters the signature stamp cannot print "
            "(only Latin-1 letters are supported)."
        )
    return cleaned


@dataclass(frozen=True)
class SignatureManifestation:
    """What one electronic signature means and shows (Part 11 §11.50, §11.200).

    Times are normalised to UTC. ``auth_time`` is when the signer last proved their identity
    (password and second factor) for this signing; it may not be after ``signed_at``.
    """

    signer_name: str
    signer_email: str
    meaning: str
    signed_at: datetime
    document_id: str
    version_label: str
    auth_method: str
    auth_time: datetime

    def __post_init__(self) -> None:
        # Frozen dataclass: normalisation must go through object.__setattr__.
        object.__setattr__(self, "signed_at", _require_aware("signing time", self.signed_at))
        object.__setattr__(self, "auth_time", _require_aware("authentication time",
                                                             self.auth_time))
        for what, value in (("signer's printed name", self.signer_name),
                            ("meaning", self.meaning), ("document id", self.document_id),
                            ("version label", self.version_label),
                            ("authentication method", self.auth_method),
                            ("signer's e-mail", self.signer_email)):
            printable(value, what)
        if self.auth_time > self.signed_at:
            raise InvalidManifestation(
                "The signer authenticated after the signing time "
                f"({format_utc(self.auth_time)} > {format_utc(self.signed_at)}); "
                "the clock or the request is wrong."
            )

    @property
    def seconds_since_auth(self) -> int:
        """Whole seconds between authentication and signing: the value of /Prop_AuthTime."""
        return int((self.signed_at - self.auth_time).total_seconds())


def signature_field_name(manifestation: SignatureManifestation, ordinal: int) -> str:
    """A field name unique within the document: our prefix, the slot number and the time.

    PDF field names may not contain periods (they separate name parts), so only letters,
    digits and hyphens are used.
    """
    stamp = manifestation.signed_at.strftime("%Y%m%dT%H%M%SZ")
    return f"{FIELD_PREFIX}{ordinal:02d}-{stamp}"


def stamp_text_params(manifestation: SignatureManifestation) -> dict[str, str]:
    """Values for the visible stamp's text template (see ``pades.STAMP_TEXT``)."""
    m = manifestation
    return {
        "name": printable(m.signer_name, "signer's printed name"),
        "when": format_utc(m.signed_at),
        "meaning": printable(m.meaning, "meaning"),
        "document": printable(m.document_id, "document id"),
        "version": printable(m.version_label, "version label"),
        "email": printable(m.signer_email, "signer's e-mail"),
    }


def signature_dictionary_entries(
    manifestation: SignatureManifestation,
) -> dict[generic.NameObject, generic.PdfObject]:
    """The Part 11 authentication entries we add to the signature dictionary (SIG-4).

    /Prop_AuthTime is, as ISO 32000 defines it, the seconds since the signer last
    authenticated. /Prop_AuthType holds our method verbatim (e.g. ``password+totp``) rather
    than one of the three names ISO 32000 lists (PIN, Password, Fingerprint): none of those
    can say that a second factor was used, and readers show the value as plain text.
    pyHanko's own options drop an AuthTime of 0 and accept only its enum for AuthType, so we
    write both entries ourselves.
    """
    return {
        generic.NameObject("/Prop_AuthType"): generic.TextStringObject(
            manifestation.auth_method
        ),
        generic.NameObject("/Prop_AuthTime"): generic.NumberObject(  # type: ignore[no-untyped-call]
            manifestation.seconds_since_auth
        ),
    }


def to_signature_metadata(
    manifestation: SignatureManifestation,
    *,
    field_name: str,
    level: PadesLevel = "B-B",
    validation_context: ValidationContext | None = None,
    location: str | None = None,
) -> PdfSignatureMetadata:
    """Turn our manifestation into pyHanko's ``PdfSignatureMetadata``.

    /Reason is the meaning and /Name the printed name (SIG-2); the subfilter is always
    ETSI.CAdES.detached (PAdES). For B-LT and B-LTA validation information (certificates and
    CRLs from ``validation_context``) is embedded in the document security store, and B-LTA
    adds a document timestamp over it.
    """
    if level not in PADES_LEVELS:
        raise InvalidManifestation(f"Unknown PAdES level {level!r}; use one of {PADES_LEVELS}.")
    long_term = level in ("B-LT", "B-LTA")
    if long_term and validation_context is None:
        raise InvalidManifestation(
            f"PAdES {level} embeds revocation information and needs a validation context."
        )
    return PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        reason=printable(manifestation.meaning, "meaning"),
        name=printable(manifestation.signer_name, "signer's printed name"),
        location=location,
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=long_term,
        use_pades_lta=level == "B-LTA",
        validation_context=validation_context if long_term else None,
        # Our user certificates carry both bits; require both, so a certificate issued for
        # something else cannot be used to sign records.
        signer_key_usage={"digital_signature", "non_repudiation"},
    )

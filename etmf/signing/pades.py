"""PAdES signing with a visible Part 11 stamp, as a thin wrapper over pyHanko.

Stamp placement: before the first signature we append one *signature manifest page* to the
document (in the same incremental revision as that signature, so it is covered by it) and every
signature - first and later - puts its stamp in the next free slot on that page. We chose this
over stamping the last page because it always works: no page content is ever covered, page
sizes and rotations do not matter, and later signatures only add a widget to an existing page,
which pyHanko's difference analysis accepts as an allowed signature update.
A later revision cannot add a page without invalidating the earlier signatures, so the number
of signatures is bounded by the slots on the page (:data:`MANIFEST_SLOTS`).

The signer is built once (key parsed and decrypted once) and reused; ``bytes_reserved`` is
always passed so pyHanko does not sign a dummy document to measure the signature size.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from io import BytesIO
from typing import Any, BinaryIO

from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyhankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.signers.cms_embedder import SigObjSetup
from pyhanko.sign.signers.pdf_signer import PdfSigningSession
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from etmf.signing.errors import (
    CertificateRevoked,
    EncryptedPdf,
    ManifestPageFull,
    NotAPdf,
    SigningError,
    TimestampUnavailable,
)
from etmf.signing.keystore import to_asn1_cert
from etmf.signing.manifestation import (
    FIELD_PREFIX,
    PADES_LEVELS,
    PadesLevel,
    SignatureManifestation,
    printable,
    signature_dictionary_entries,
    signature_field_name,
    stamp_text_params,
    to_signature_metadata,
)

STAMP_TEXT = (
    "Electronically signed by: %(name)s\n"
    "Date and time: %(when)s\n"
    "Meaning: %(meaning)s\n"
    "Document: %(document)s, version %(version)s"
)
STAMP_STYLE = TextStampStyle(
    stamp_text=STAMP_TEXT,
    background=None,
    border_width=1,
    text_box_style=TextBoxStyle(font_size=9),
    inner_content_layout=SimpleBoxLayoutRule(
        x_align=AxisAlignment.ALIGN_MIN, y_align=AxisAlignment.ALIGN_MID,
        margins=Margins(left=8, right=8, top=4, bottom=4),
    ),
)

# Manifest page geometry (A4, points). Slots are stacked top to bottom.
PAGE_WIDTH, PAGE_HEIGHT = 595, 842
MARGIN = 50
FIRST_SLOT_TOP = 730
SLOT_HEIGHT = 62
SLOT_GAP = 8
MANIFEST_SLOTS = (FIRST_SLOT_TOP - MARGIN) // (SLOT_HEIGHT + SLOT_GAP)

# Room for the CMS object: RSA-2048 signature, our certificate and the CA's, signed
# attributes; a timestamp token adds the TSA's certificates. Generous, never measured.
BYTES_RESERVED_PLAIN = 8192
BYTES_RESERVED_TIMESTAMPED = 24576


def slot_box(ordinal: int) -> tuple[int, int, int, int]:
    """The stamp rectangle (x1, y1, x2, y2) of the ``ordinal``-th signature on the page."""
    if not 0 <= ordinal < MANIFEST_SLOTS:
        raise ManifestPageFull(
            f"This document already carries {MANIFEST_SLOTS} signatures, the most its "
            "signature manifest page can show; sign a new version instead."
        )
    top = FIRST_SLOT_TOP - ordinal * (SLOT_HEIGHT + SLOT_GAP)
    return (MARGIN, top - SLOT_HEIGHT, PAGE_WIDTH - MARGIN, top)


def _pdf_literal(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def _manifest_page_content(manifestation: SignatureManifestation) -> bytes:
    document = printable(manifestation.document_id, "document id")
    version = printable(manifestation.version_label, "version label")
    lines = [
        (b"/F2 14 Tf", MARGIN, 790, "Electronic signature manifest"),
        (b"/F1 9 Tf", MARGIN, 772, f"Document {document}, version {version}."),
        (b"/F1 9 Tf", MARGIN, 758,
         "Each box below is an electronic signature applied to this document: the signer's"),
        (b"/F1 9 Tf", MARGIN, 746,
         "printed name, the date and time (UTC) and the meaning of the signature (21 CFR 11.50)."),
    ]
    ops = [b"BT " + font + b" %d %d Td " % (x, y) + _pdf_literal(text) + b" Tj ET"
           for font, x, y, text in lines]
    ops.append(b"0.5 w %d 738 m %d 738 l S" % (MARGIN, PAGE_WIDTH - MARGIN))
    return b"\n".join(ops) + b"\n"


def _pdf_dict(entries: dict[str, Any]) -> generic.DictionaryObject:
    # One typed door into pyHanko's (untyped) object constructors.
    return generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {pdf_name(key): value for key, value in entries.items()})


def _pdf_numbers(values: Sequence[int]) -> generic.ArrayObject:
    return generic.ArrayObject(
        [generic.NumberObject(v) for v in values])  # type: ignore[no-untyped-call]


def _helvetica(base_font: str) -> generic.DictionaryObject:
    return _pdf_dict({"/Type": pdf_name("/Font"), "/Subtype": pdf_name("/Type1"),
                      "/BaseFont": pdf_name("/" + base_font),
                      "/Encoding": pdf_name("/WinAnsiEncoding")})


def append_manifest_page(writer: IncrementalPdfFileWriter,
                         manifestation: SignatureManifestation) -> generic.IndirectObject:
    """Append the signature manifest page as the last page; return a reference to it.

    The page goes at the end of the page tree root's /Kids, which is the last page whatever
    the tree's shape, so no page object needs to be read (pyHanko's ``insert_page`` walks
    the tree: ~150 ms on a 100-page file).
    """
    content = writer.add_object(generic.StreamObject(stream_data=_manifest_page_content(
        manifestation)))
    pages_ref = writer.root.raw_get("/Pages")
    pages = pages_ref.get_object()
    page_ref = writer.add_object(_pdf_dict({
        "/Type": pdf_name("/Page"),
        "/Parent": pages_ref,
        "/MediaBox": _pdf_numbers((0, 0, PAGE_WIDTH, PAGE_HEIGHT)),
        "/Resources": _pdf_dict({"/Font": _pdf_dict({"/F1": _helvetica("Helvetica"),
                                                     "/F2": _helvetica("Helvetica-Bold")})}),
        "/Contents": content,
    }))
    kids = pages["/Kids"]
    kids.append(page_ref)
    writer.update_container(kids)
    pages[pdf_name("/Count")] = generic.NumberObject(  # type: ignore[no-untyped-call]
        int(pages["/Count"]) + 1)
    writer.update_container(pages)
    return page_ref


def find_manifest_slot(reader: PdfFileReader) -> tuple[generic.IndirectObject | None, int]:
    """Locate our manifest page (None if there is none yet) and the next free slot number."""
    ours = [ref for name, _value, ref in fields.enumerate_sig_fields(reader)
            if name.startswith(FIELD_PREFIX)]
    if not ours:
        return None, 0
    widget = ours[0].get_object()
    if "/P" not in widget and "/Kids" in widget:
        widget = widget["/Kids"][0].get_object()
    page_ref = widget.raw_get("/P") if "/P" in widget else None
    page = (page_ref.get_object()  # type: ignore[no-untyped-call]
            if isinstance(page_ref, generic.IndirectObject) else None)
    if page_ref is None or page is None or page.get("/Type") != "/Page":
        raise SigningError("The signature manifest page of this document cannot be found; "
                           "the file was altered outside this system.")
    return page_ref, len(ours)


def add_signature_field(writer: IncrementalPdfFileWriter, field_name: str,
                        page_ref: generic.IndirectObject, box: tuple[int, int, int, int]) -> None:
    """Create the empty signature field and its widget on the manifest page.

    We create it ourselves, with the page reference we already hold, because pyHanko's
    ``SigFieldSpec(on_page=n)`` finds page n by reading every page object before it.
    """
    fields.prepare_sig_field(field_name, writer.root, update_writer=writer,
                             existing_fields_only=False, box=box, include_on_page=page_ref)


def open_for_signing(data: bytes) -> IncrementalPdfFileWriter:
    """Open PDF bytes for an incremental update, refusing non-PDFs and encrypted PDFs."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise NotAPdf("This file is not a PDF (it does not start with %PDF-).")
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise NotAPdf(f"This PDF cannot be read: {exc}") from exc
    if writer.prev.encrypted:
        raise EncryptedPdf("This PDF is encrypted; remove the password before signing it.")
    return writer


class _SignatureDictionaryAugmenter(Generator[Any, Any, Any]):
    """Wrap pyHanko's CMS-writer coroutine to add our entries to the signature dictionary.

    pyHanko sends the signature dictionary to this coroutine (as ``SigObjSetup``) before the
    document is digested, so entries added here are inside the signed byte range.
    """

    def __init__(self, inner: Generator[Any, Any, Any],
                 entries: dict[generic.NameObject, generic.PdfObject]) -> None:
        self._inner = inner
        self._entries = entries

    def send(self, value: Any) -> Any:
        if isinstance(value, SigObjSetup):
            value.sig_placeholder.update(self._entries)
        return self._inner.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        return self._inner.throw(typ, val, tb)


class _ManifestedPdfSigner(PdfSigner):
    """A PdfSigner whose signing time is the manifestation's, not the wall clock.

    The same instant then appears in /M, the CMS signing-time attribute and the stamp.
    """

    def __init__(self, meta: PdfSignatureMetadata, signer: Signer, *,
                 manifestation: SignatureManifestation,
                 timestamper: TimeStamper | None) -> None:
        super().__init__(meta, signer, timestamper=timestamper, stamp_style=STAMP_STYLE)
        self._manifestation = manifestation

    def init_signing_session(self, pdf_out: Any,
                             existing_fields_only: bool = False) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._manifestation.signed_at
        session.cms_writer = _SignatureDictionaryAugmenter(
            session.cms_writer, signature_dictionary_entries(self._manifestation))
        return session


def _caused_by_tsa(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimestampRequestError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class PadesSigner:
    """Signs PDFs for one signer, keeping the parsed key and certificate between calls.

    ``trust_roots`` and ``crls`` feed the validation information embedded at B-LT/B-LTA
    (they must cover the signer's chain and the TSA's); ``crls`` is called at each such
    signature so a freshly built CRL is embedded. ``is_revoked`` is asked before every
    signature, because a key kept in memory can outlive its certificate's revocation.
    """

    def __init__(self, signer: Signer, *, trust_roots: Sequence[x509.Certificate] = (),
                 crls: Callable[[], Sequence[bytes]] = lambda: (),
                 is_revoked: Callable[[int], bool] | None = None,
                 allow_fetching: bool = False) -> None:
        if signer.signing_cert is None:
            raise SigningError("The signer has no certificate.")
        self._signer = signer
        self._trust_roots = [to_asn1_cert(c) for c in trust_roots]
        self._crls = crls
        self._is_revoked = is_revoked
        self._allow_fetching = allow_fetching

    @property
    def serial_number(self) -> int:
        """Serial number of the signing certificate."""
        cert = self._signer.signing_cert
        assert cert is not None  # checked in __init__
        return int(cert.serial_number)

    def _validation_context(self, moment: datetime) -> ValidationContext:
        # Validate the chain as of the signing time: the manifestation's time is the one
        # the record claims, and it keeps signing deterministic for a given clock.
        return ValidationContext(
            moment=moment,
            trust_roots=self._trust_roots,
            crls=list(self._crls()),
            allow_fetching=self._allow_fetching,
            revocation_mode="hard-fail",
        )

    def sign(self, pdf_in: BinaryIO, manifestation: SignatureManifestation, *,
             timestamper: TimeStamper | None = None, level: PadesLevel = "B-B") -> bytes:
        """Sign the PDF read from ``pdf_in`` and return the signed PDF's bytes.

        The signature is an incremental update: earlier signatures stay valid. ``level``
        must match what is available: "B-B" without a time-stamper, "B-T", "B-LT" or
        "B-LTA" with one. If the time-stamping authority fails, :class:`TimestampUnavailable`
        is raised and nothing is returned - never a signature at a lower level.
        """
        _check_level(level, timestamper)
        if self._is_revoked is not None and self._is_revoked(self.serial_number):
            raise CertificateRevoked(
                f"The signing certificate {self.serial_number:x} has been revoked; "
                "it cannot sign any more documents."
            )
        writer = open_for_signing(pdf_in.read())
        page_ref, ordinal = find_manifest_slot(writer.prev)
        box = slot_box(ordinal)
        if page_ref is None:
            page_ref = append_manifest_page(writer, manifestation)
        field_name = signature_field_name(manifestation, ordinal)
        add_signature_field(writer, field_name, page_ref, box)
        meta = to_signature_metadata(
            manifestation, field_name=field_name, level=level,
            validation_context=self._validation_context(manifestation.signed_at) if level in ("B-LT", "B-LTA")
            else None,
        )
        pdf_signer = _ManifestedPdfSigner(
            meta, self._signer, manifestation=manifestation, timestamper=timestamper)
        output = BytesIO()
        try:
            pdf_signer.sign_pdf(
                writer, output=output,
                bytes_reserved=BYTES_RESERVED_PLAIN if timestamper is None
                else BYTES_RESERVED_TIMESTAMPED,
                appearance_text_params=stamp_text_params(manifestation),
            )
        except Exception as exc:
            if _caused_by_tsa(exc):
                raise TimestampUnavailable(
                    f"The time-stamping authority did not answer ({exc}); the document was "
                    f"not signed. PAdES {level} needs a time-stamp: try again later."
                ) from exc
            if isinstance(exc, PyhankoSigningError | PdfError):
                raise SigningError(f"The document could not be signed: {exc}") from exc
            raise
        return output.getvalue()


def _check_level(level: str, timestamper: TimeStamper | None) -> None:
    if level not in PADES_LEVELS:
        raise SigningError(f"Unknown PAdES level {level!r}; use one of {PADES_LEVELS}.")
    if level == "B-B" and timestamper is not None:
        raise SigningError("A time-stamper was given for PAdES B-B; ask for 'B-T' or higher "
                           "so the level recorded matches the signature.")
    if level != "B-B" and timestamper is None:
        raise TimestampUnavailable(
            f"PAdES {level} needs a time-stamping authority and none is configured."
        )

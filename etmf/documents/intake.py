"""Safe intake of an uploaded file: decide, before anything is stored, whether to accept it.

The upload has already been streamed to a file on disk (a spooled temporary file); this
module only ever reads it in bounded pieces, so a 1 GB upload costs a few MB here.

Checks, in order, each ending in a ``RejectedFile`` that names the file and says why:

1. size: empty, or over the configured limit;
2. for ZIP-based content (DOCX, XLSX, PPTX) the archive limits, read from the central
   directory without decompressing anything: entry count, total uncompressed size,
   per-entry compression ratio, encrypted entries, path tricks and duplicate entry names.
   They come before the type check because naming an Office type needs that directory;
3. type by content (magic bytes and structure), never by name, against the allowed types;
4. the declared extension: a name ending in the extension of another known type
   (``report.pdf`` whose content is a DOCX) is refused, because people and other systems
   trust the extension. A name without an extension, or with one we do not know, passes;
5. per-format structure: a PDF must end with ``%%EOF``, must not be encrypted, and pypdf
   must read its page tree; a DOCX must open in python-docx. These parsers run in the
   bounded worker pool of ``etmf.documents.extract`` so a hostile file costs at most the
   configured time and memory.

The accepted file is described by an ``IntakeResult`` (type, SHA-256, size, page count,
sanitised name). Nothing here writes anywhere.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import posixpath
import re
import struct
import unicodedata
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO, Final, TypeVar

from etmf.documents.extract import (
    DOCX_MIME,
    MIB,
    PDF_MIME,
    TEXT_MIME,
    BoundedRunCrashed,
    BoundedRunError,
    BoundedRunFailed,
    BoundedRunner,
    BoundedRunOutOfMemory,
    BoundedRunTimeout,
    default_runner,
)

__all__ = [
    "DEFAULT_ALLOWED_TYPES",
    "DOCM_MIME",
    "DOCX_MIME",
    "ENCRYPTED_OFFICE_MIME",
    "JPEG_MIME",
    "PDF_MIME",
    "PNG_MIME",
    "PPTX_MIME",
    "TEXT_MIME",
    "TIFF_MIME",
    "UNKNOWN_MIME",
    "XLSX_MIME",
    "ZIP_MIME",
    "DetectedType",
    "IntakeLimits",
    "IntakeResult",
    "RejectedFile",
    "check_zip_archive",
    "inspect_upload",
    "sanitize_filename",
    "sha256_of_file",
    "sniff",
]

# --------------------------------------------------------------------------------------
# Types recognised by content
# --------------------------------------------------------------------------------------

XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX_MIME: Final = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCM_MIME: Final = "application/vnd.ms-word.document.macroEnabled.12"
ZIP_MIME: Final = "application/zip"
PNG_MIME: Final = "image/png"
JPEG_MIME: Final = "image/jpeg"
TIFF_MIME: Final = "image/tiff"
ENCRYPTED_OFFICE_MIME: Final = "application/x-encrypted-office-document"
UNKNOWN_MIME: Final = "application/octet-stream"


@dataclass(frozen=True)
class DetectedType:
    """What a file is, judged by its content.

    ``label`` completes the sentence "its content is …" (e.g. "a Windows executable").
    """

    mime: str
    extension: str
    label: str


PDF: Final = DetectedType(PDF_MIME, ".pdf", "a PDF")
DOCX: Final = DetectedType(DOCX_MIME, ".docx", "a Word document (DOCX)")
DOCM: Final = DetectedType(DOCM_MIME, ".docm", "a Word document with macros (DOCM)")
XLSX: Final = DetectedType(XLSX_MIME, ".xlsx", "an Excel workbook (XLSX)")
PPTX: Final = DetectedType(PPTX_MIME, ".pptx", "a PowerPoint presentation (PPTX)")
ZIP: Final = DetectedType(ZIP_MIME, ".zip", "a ZIP archive")
TEXT: Final = DetectedType(TEXT_MIME, ".txt", "plain text")
PNG: Final = DetectedType(PNG_MIME, ".png", "a PNG image")
JPEG: Final = DetectedType(JPEG_MIME, ".jpg", "a JPEG image")
TIFF: Final = DetectedType(TIFF_MIME, ".tif", "a TIFF image")
ENCRYPTED_OFFICE: Final = DetectedType(
    ENCRYPTED_OFFICE_MIME, ".docx", "a password-protected Office document"
)
UNKNOWN: Final = DetectedType(UNKNOWN_MIME, "", "in a format this server does not recognise")

#: The types an eTMF accepts unless configured otherwise.
DEFAULT_ALLOWED_TYPES: Final = frozenset(
    {PDF_MIME, DOCX_MIME, XLSX_MIME, PPTX_MIME, TEXT_MIME, PNG_MIME, JPEG_MIME, TIFF_MIME}
)

_OOXML_MIMES: Final = frozenset({DOCX_MIME, DOCM_MIME, XLSX_MIME, PPTX_MIME})
_ZIP_FAMILY: Final = _OOXML_MIMES | {ZIP_MIME}

# Magic bytes of formats we refuse but name, so the refusal can say what the file really is.
_MAGIC: Final[tuple[tuple[bytes, DetectedType], ...]] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"MZ", DetectedType("application/vnd.microsoft.portable-executable", ".exe",
                         "a Windows executable")),
    (b"\x7fELF", DetectedType("application/x-executable", "", "a Linux executable")),
    (b"\xcf\xfa\xed\xfe", DetectedType("application/x-mach-binary", "", "a macOS executable")),
    (b"\xce\xfa\xed\xfe", DetectedType("application/x-mach-binary", "", "a macOS executable")),
    (b"\xca\xfe\xba\xbe", DetectedType("application/java-vm", ".class",
                                       "a compiled program (Java class or macOS executable)")),
    (b"#!", DetectedType("text/x-script", ".sh", "a script")),
    (b"GIF87a", DetectedType("image/gif", ".gif", "a GIF image")),
    (b"GIF89a", DetectedType("image/gif", ".gif", "a GIF image")),
    (b"\x1f\x8b", DetectedType("application/gzip", ".gz", "a gzip archive")),
    (b"Rar!\x1a\x07", DetectedType("application/vnd.rar", ".rar", "a RAR archive")),
    (b"7z\xbc\xaf\x27\x1c", DetectedType("application/x-7z-compressed", ".7z",
                                         "a 7-Zip archive")),
    (b"{\\rtf", DetectedType("application/rtf", ".rtf", "an RTF document")),
)
_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LEGACY_OFFICE: Final = DetectedType("application/x-ole-storage", ".doc",
                                     "a legacy Microsoft Office file (.doc, .xls or .ppt)")
_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")

# Extensions people use for each type: a declared name with one of these must match.
_EXTENSIONS: Final[dict[str, str]] = {
    ".pdf": PDF_MIME,
    ".docx": DOCX_MIME,
    ".docm": DOCM_MIME,
    ".xlsx": XLSX_MIME,
    ".pptx": PPTX_MIME,
    ".zip": ZIP_MIME,
    ".txt": TEXT_MIME,
    ".png": PNG_MIME,
    ".jpg": JPEG_MIME,
    ".jpeg": JPEG_MIME,
    ".tif": TIFF_MIME,
    ".tiff": TIFF_MIME,
}

_SNIFF_BYTES: Final = 64 * 1024
_PDF_HEADER_WINDOW: Final = 1024
_PDF_EOF_WINDOW: Final = 1024
_OLE2_SCAN_BYTES: Final = 1024 * 1024
# sniff() reads a ZIP directory without the caller's limits; keep that bounded too.
_SNIFF_ZIP_MAX_ENTRIES: Final = 20_000
_SNIFF_MAX_MEMBER_BYTES: Final = 1024 * 1024


def sniff(path: str | os.PathLike[str]) -> DetectedType:
    """Identify a file by its content (magic bytes and structure), never by its name.

    Recognises PDF, DOCX/XLSX/PPTX (and macro-enabled Word), plain UTF-8 text, PNG, JPEG
    and TIFF, and names common formats we refuse (executables, archives, legacy Office)
    so that a refusal can say what the file really is. Anything else is ``UNKNOWN``.
    """
    with open(path, "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
        if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
            return PDF
        if head.startswith(_ZIP_MAGICS):
            return _sniff_zip(stream)
        if head.startswith(_OLE2_MAGIC):
            return _sniff_ole2(stream)
        for magic, detected in _MAGIC:
            if head.startswith(magic):
                return detected
        if head and _looks_like_utf8_text(head):
            return TEXT
    return UNKNOWN


def _looks_like_utf8_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        # Not final: the 64 KB window may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_zip(stream: BinaryIO) -> DetectedType:
    summary = _read_zip_end_record(stream)
    if summary is None or summary.entries > _SNIFF_ZIP_MAX_ENTRIES:
        return ZIP
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" not in names:
                return ZIP
            if "word/document.xml" in names:
                return DOCM if _declares_macros(archive) else DOCX
            if "xl/workbook.xml" in names:
                return XLSX
            if "ppt/presentation.xml" in names:
                return PPTX
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        pass
    return ZIP


def _declares_macros(archive: zipfile.ZipFile) -> bool:
    info = archive.getinfo("[Content_Types].xml")
    if info.file_size > _SNIFF_MAX_MEMBER_BYTES or info.flag_bits & 0x1:
        return False
    # Reading is capped by the declared size, which we just bounded.
    with archive.open(info) as member:
        content_types = member.read(_SNIFF_MAX_MEMBER_BYTES)
    return b"macroEnabled" in content_types


def _sniff_ole2(stream: BinaryIO) -> DetectedType:
    # A password-protected DOCX/XLSX is not a ZIP but an OLE2 file holding an
    # "EncryptedPackage" stream; its directory name is stored in UTF-16LE.
    stream.seek(0)
    window = stream.read(_OLE2_SCAN_BYTES)
    if "EncryptedPackage".encode("utf-16-le") in window:
        return ENCRYPTED_OFFICE
    return _LEGACY_OFFICE


# --------------------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------------------

MAX_FILENAME_CHARS: Final = 200
_MAX_FILENAME_BYTES: Final = 255  # most file systems, for exports that write the name
_MAX_EXTENSION_CHARS: Final = 16
_FALLBACK_NAME: Final = "unnamed"
_KEPT_FORMAT_CHARS: Final = frozenset({"\u200c", "\u200d"})  # ZWNJ/ZWJ shape some scripts
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
_WINDOWS_FORBIDDEN: Final = frozenset('<>:"/\\|?*')
_WINDOWS_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)
_DRIVE_PREFIX: Final = re.compile(r"^[A-Za-z]:")


def sanitize_filename(name: str) -> str:
    """Make an uploaded file name safe to store, display and write back to a disk.

    Keeps only the last path component (``../``, ``..\\``, absolute paths and drive letters
    go), drops control, format and bidi-override characters (so "invoice\\u202Efdp.exe" is
    shown as the ``.exe`` it is), NFC-normalises, keeps letters of every script, replaces
    characters Windows forbids, prefixes reserved Windows device names, and shortens to 200
    characters (and 255 UTF-8 bytes) keeping the extension. Never returns an empty string.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(_clean_char(char) for char in text)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _DRIVE_PREFIX.sub("", text)
    text = " ".join(text.split())  # collapse runs of white space
    # Leading dots make hidden files ("..", ".htaccess"); Windows drops trailing dots/spaces.
    text = text.lstrip(". ").rstrip(". ")
    text = "".join("_" if char in _WINDOWS_FORBIDDEN - {"/", "\\"} else char for char in text)
    if not text:
        return _FALLBACK_NAME
    stem, extension = _split_extension(text)
    if stem.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return _shorten(stem or _FALLBACK_NAME, extension)


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if char in _KEPT_FORMAT_CHARS:
        return char
    if category in _DROPPED_CATEGORIES:
        return ""
    if category == "Zs":
        return " "
    return char


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > _MAX_EXTENSION_CHARS or " " in extension:
        return name, ""
    return stem, "." + extension


def _shorten(stem: str, extension: str) -> str:
    stem = stem[: MAX_FILENAME_CHARS - len(extension)]
    while len((stem + extension).encode("utf-8")) > _MAX_FILENAME_BYTES:
        stem = stem[:-1]
    # Cutting may leave a dangling combining mark or a trailing space/dot.
    stem = stem.rstrip(". ")
    while stem and unicodedata.combining(stem[-1]):
        stem = stem[:-1]
    return (stem or _FALLBACK_NAME) + extension


# --------------------------------------------------------------------------------------
# Refusals and limits
# --------------------------------------------------------------------------------------


class RejectedFile(Exception):
    """An upload refused at intake. ``message`` names the file and says what to do.

    ``code`` is stable for programs: "empty", "too_large", "wrong_type",
    "extension_mismatch", "encrypted", "malformed", "archive_bomb", "bad_name".
    """

    def __init__(self, code: str, message: str, *, filename: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.filename = filename


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds for checking one file; the archive limits apply before anything is inflated."""

    max_zip_entries: int = 5_000
    max_uncompressed_bytes: int = 100 * MIB
    max_compression_ratio: float = 100.0
    # Small members compress extremely well without being dangerous; ratio only above this.
    ratio_check_min_bytes: int = 64 * 1024
    parse_timeout_s: float = 20.0
    parse_memory_mb: int = 512


@dataclass(frozen=True)
class IntakeResult:
    """An accepted upload: what it is, its SHA-256 and size, pages for a PDF, a safe name."""

    detected: DetectedType
    sha256: str
    size: int
    page_count: int | None
    filename: str


def inspect_upload(
    path: str | os.PathLike[str],
    declared_name: str,
    *,
    max_bytes: int,
    allowed_types: Collection[str],
    limits: IntakeLimits | None = None,
    runner: BoundedRunner | None = None,
) -> IntakeResult:
    """Check an uploaded file on disk and describe it, or raise ``RejectedFile``.

    ``allowed_types`` holds MIME types (see ``DEFAULT_ALLOWED_TYPES``). The file is only
    read, in bounded chunks; parsers run in ``runner`` (the process-wide bounded runner by
    default) under ``limits``. See the module docstring for the order of the checks.
    """
    limits = limits or IntakeLimits()
    filename = sanitize_filename(declared_name)
    size = _check_size(path, filename, max_bytes)
    if _starts_with_zip_magic(path) and _OOXML_MIMES & set(allowed_types):
        check_zip_archive(path, filename, limits)
    detected = sniff(path)
    _check_type(detected, filename, allowed_types)
    _check_extension(detected, filename)
    page_count = None
    if detected.mime == PDF_MIME:
        page_count = _check_pdf(path, filename, limits, runner or default_runner())
    elif detected.mime == DOCX_MIME:
        _check_docx(path, filename, limits, runner or default_runner())
    return IntakeResult(
        detected=detected,
        sha256=sha256_of_file(path),
        size=size,
        page_count=page_count,
        filename=filename,
    )


_HASH_CHUNK: Final = 1024 * 1024


def sha256_of_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MB chunks so memory stays flat for any size."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_size(path: str | os.PathLike[str], filename: str, max_bytes: int) -> int:
    size = os.stat(path).st_size
    if size == 0:
        raise RejectedFile("empty", f"The file '{filename}' is empty.", filename=filename)
    if size > max_bytes:
        raise RejectedFile(
            "too_large",
            f"The file '{filename}' is {_megabytes(size)}, larger than the limit of "
            f"{_megabytes(max_bytes)}.",
            filename=filename,
        )
    return size


def _megabytes(size: int) -> str:
    value = size / MIB
    return f"{value:.1f} MB" if value >= 0.1 else f"{value:.3g} MB"


def _check_type(detected: DetectedType, filename: str, allowed: Collection[str]) -> None:
    if detected.mime in allowed:
        return
    expected = _expected_label(filename, allowed)
    if detected is ENCRYPTED_OFFICE and _OOXML_MIMES & set(allowed):
        raise RejectedFile(
            "encrypted",
            f"The file '{filename}' is a password-protected Office document; "
            "remove the password and upload it again.",
            filename=filename,
        )
    raise RejectedFile(
        "wrong_type",
        f"The file '{filename}' is not {expected}: its content is {detected.label}.",
        filename=filename,
    )


def _expected_label(filename: str, allowed: Collection[str]) -> str:
    # Say what the name promised if it promised an allowed type, else list what is allowed.
    declared = _EXTENSIONS.get(_split_extension(filename)[1].lower())
    labels = {t.mime: t.label for t in (PDF, DOCX, DOCM, XLSX, PPTX, ZIP, TEXT, PNG, JPEG, TIFF)}
    if declared in allowed and declared in labels:
        return labels[declared]
    names = sorted(labels[mime] for mime in allowed if mime in labels)
    if not names:
        return "an accepted type"
    return "an accepted type (" + ", ".join(names) + ")"


def _check_extension(detected: DetectedType, filename: str) -> None:
    extension = _split_extension(filename)[1].lower()
    declared = _EXTENSIONS.get(extension)
    if declared is None or declared == detected.mime:
        return
    raise RejectedFile(
        "extension_mismatch",
        f"The file '{filename}' is named '{extension}' but its content is {detected.label}; "
        f"rename it to end in '{detected.extension}' and upload it again.",
        filename=filename,
    )


# --------------------------------------------------------------------------------------
# ZIP (DOCX, XLSX, PPTX) checks from the central directory
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ZipEndRecord:
    entries: int
    directory_size: int


_EOCD_SIGNATURE: Final = b"PK\x05\x06"
_EOCD_MIN_SIZE: Final = 22
_ZIP64_LOCATOR_SIGNATURE: Final = b"PK\x06\x07"
_ZIP64_EOCD_SIGNATURE: Final = b"PK\x06\x06"
_MAX_COMMENT: Final = 0xFFFF


def _starts_with_zip_magic(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as stream:
        return stream.read(4) in _ZIP_MAGICS


def _read_zip_end_record(stream: BinaryIO) -> _ZipEndRecord | None:
    """Entry count and directory size from the end record, before zipfile lists anything.

    zipfile builds one object per entry; reading the counts first lets a directory with
    millions of entries be refused for the price of reading 64 KB.
    """
    stream.seek(0, os.SEEK_END)
    file_size = stream.tell()
    tail_size = min(file_size, _EOCD_MIN_SIZE + _MAX_COMMENT)
    stream.seek(file_size - tail_size)
    tail = stream.read(tail_size)
    position = tail.rfind(_EOCD_SIGNATURE)
    if position < 0 or len(tail) - position < _EOCD_MIN_SIZE:
        return None
    entries, directory_size = struct.unpack("<HI", tail[position + 10: position + 16])
    if entries != 0xFFFF and directory_size != 0xFFFFFFFF:
        return _ZipEndRecord(entries, directory_size)
    return _read_zip64_end_record(stream, file_size - tail_size + position)


def _read_zip64_end_record(stream: BinaryIO, eocd_offset: int) -> _ZipEndRecord | None:
    if eocd_offset < 20:
        return None
    stream.seek(eocd_offset - 20)
    locator = stream.read(20)
    if not locator.startswith(_ZIP64_LOCATOR_SIGNATURE):
        return None
    (record_offset,) = struct.unpack("<Q", locator[8:16])
    stream.seek(record_offset)
    record = stream.read(56)
    if len(record) < 56 or not record.startswith(_ZIP64_EOCD_SIGNATURE):
        return None
    entries, directory_size = struct.unpack("<QQ", record[32:48])
    return _ZipEndRecord(entries, directory_size)


def check_zip_archive(
    path: str | os.PathLike[str], filename: str, limits: IntakeLimits
) -> None:
    """Refuse a ZIP-based file whose directory promises trouble, without inflating it.

    Reads only the end record and the central directory: entry count, total uncompressed
    size, each entry's compression ratio, encryption flags and entry names (absolute paths,
    drive letters, ``..``, control characters, duplicates). Raises ``RejectedFile``.
    """
    with open(path, "rb") as stream:
        summary = _read_zip_end_record(stream)
        if summary is None:
            raise _damaged_zip(filename)
        if summary.entries > limits.max_zip_entries:
            raise _too_many_entries(filename, summary.entries, limits)
        try:
            with zipfile.ZipFile(stream) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise _damaged_zip(filename) from exc
    if len(infos) > limits.max_zip_entries:
        raise _too_many_entries(filename, len(infos), limits)
    _check_zip_entries(infos, filename, limits)


def _check_zip_entries(
    infos: list[zipfile.ZipInfo], filename: str, limits: IntakeLimits
) -> None:
    total = 0
    seen: set[str] = set()
    for info in infos:
        _check_entry_name(info.filename, filename)
        if info.filename in seen:
            raise RejectedFile(
                "malformed",
                f"The file '{filename}' is damaged or crafted: it contains "
                f"'{_printable(info.filename)}' twice.",
                filename=filename,
            )
        seen.add(info.filename)
        if info.flag_bits & 0x1:
            raise RejectedFile(
                "encrypted",
                f"The file '{filename}' contains encrypted parts; "
                "remove the password and upload it again.",
                filename=filename,
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= limits.ratio_check_min_bytes and ratio > limits.max_compression_ratio:
            raise RejectedFile(
                "archive_bomb",
                f"The file '{filename}' was refused: its part '{_printable(info.filename)}' "
                f"would expand {ratio:,.0f} times (the limit is "
                f"{limits.max_compression_ratio:,.0f}), which is typical of a zip bomb.",
                filename=filename,
            )
    if total > limits.max_uncompressed_bytes:
        raise RejectedFile(
            "archive_bomb",
            f"The file '{filename}' was refused: it would expand to {_megabytes(total)}, "
            f"more than the limit of {_megabytes(limits.max_uncompressed_bytes)}.",
            filename=filename,
        )


def _check_entry_name(entry: str, filename: str) -> None:
    normalized = entry.replace("\\", "/")
    parts = normalized.split("/")
    if (
        normalized.startswith("/")
        or _DRIVE_PREFIX.match(normalized)
        or ".." in parts
        or any(unicodedata.category(char) in {"Cc", "Cf"} for char in entry)
        or posixpath.normpath(normalized).startswith("..")
    ):
        raise RejectedFile(
            "bad_name",
            f"The file '{filename}' was refused: it contains a part named "
            f"'{_printable(entry)}', which points outside the document.",
            filename=filename,
        )


def _printable(text: str) -> str:
    # Entry names come from the file: never echo control or bidi characters to a person.
    shown = "".join(
        char if unicodedata.category(char) not in {"Cc", "Cf"} else "?" for char in text
    )
    return shown if len(shown) <= 80 else shown[:79] + "…"


def _too_many_entries(filename: str, entries: int, limits: IntakeLimits) -> RejectedFile:
    return RejectedFile(
        "archive_bomb",
        f"The file '{filename}' was refused: it holds {entries:,} parts, more than the "
        f"limit of {limits.max_zip_entries:,}.",
        filename=filename,
    )


def _damaged_zip(filename: str) -> RejectedFile:
    return RejectedFile(
        "malformed",
        f"The file '{filename}' is damaged: its table of contents cannot be read. "
        "It may have been cut off during upload; please upload it again.",
        filename=filename,
    )


# --------------------------------------------------------------------------------------
# Format checks that need a parser: run bounded
# --------------------------------------------------------------------------------------


def _check_pdf(
    path: str | os.PathLike[str], filename: str, limits: IntakeLimits, runner: BoundedRunner
) -> int:
    if not _has_pdf_end_marker(path):
        raise RejectedFile(
            "malformed",
            f"The PDF '{filename}' is damaged: it is incomplete (its end-of-file marker is "
            "missing). It may have been cut off during upload; please upload it again.",
            filename=filename,
        )
    encrypted, pages = _run_parser(_pdf_structure, path, filename, "PDF", limits, runner)
    if encrypted:
        raise RejectedFile(
            "encrypted",
            f"The PDF '{filename}' is password-protected or encrypted; "
            "upload an unencrypted copy.",
            filename=filename,
        )
    if pages < 1:
        raise RejectedFile(
            "malformed",
            f"The PDF '{filename}' is damaged: it has no readable pages.",
            filename=filename,
        )
    return pages


def _has_pdf_end_marker(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(stream.tell() - _PDF_EOF_WINDOW, 0))
        return b"%%EOF" in stream.read(_PDF_EOF_WINDOW)


def _pdf_structure(path: str) -> tuple[bool, int]:
    """Worker side: (encrypted, number of pages). Walking the page tree proves it readable."""
    from pypdf import PdfReader

    with open(path, "rb") as stream:
        reader = PdfReader(stream)
        if reader.is_encrypted:
            return True, 0
        return False, len(reader.pages)


def _check_docx(
    path: str | os.PathLike[str], filename: str, limits: IntakeLimits, runner: BoundedRunner
) -> None:
    _run_parser(_docx_structure, path, filename, "Word document", limits, runner)


def _docx_structure(path: str) -> int:
    """Worker side: open the document and walk its body; returns the number of blocks."""
    import docx

    return sum(1 for _ in docx.Document(path).iter_inner_content())


R = TypeVar("R")


def _run_parser(
    func: Callable[[str], R],
    path: str | os.PathLike[str],
    filename: str,
    kind: str,
    limits: IntakeLimits,
    runner: BoundedRunner,
) -> R:
    try:
        return runner.run(
            func, os.fspath(path),
            timeout_s=limits.parse_timeout_s, memory_mb=limits.parse_memory_mb,
        )
    except BoundedRunTimeout as exc:
        reason = f"it could not be read within {exc.timeout_s:g} seconds"
    except BoundedRunOutOfMemory as exc:
        reason = f"reading it needed more than {exc.memory_mb} MB of memory"
    except BoundedRunCrashed:
        reason = "the reader stopped unexpectedly on it"
    except BoundedRunFailed as exc:
        reason = f"it could not be read ({exc})"
    except BoundedRunError as exc:
        reason = str(exc)
    raise RejectedFile(
        "malformed",
        f"The {kind} '{filename}' is damaged or not a valid {kind}: {reason}.",
        filename=filename,
    )

"""Files are typed by their content, whatever their name says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from etmf.documents import intake
from etmf.documents.intake import sniff
from tests.unit.documents import factories

XLSX_TYPES = factories.CONTENT_TYPES_DOCX.replace("word/document", "xl/workbook")
DOCM_TYPES = factories.CONTENT_TYPES_DOCX.replace(
    "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "vnd.ms-word.document.macroEnabled.main+xml",
)

CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "pdf": (lambda: factories.pdf_bytes(1), intake.PDF_MIME),
    "pdf after junk": (lambda: b"\x00junk" * 100 + factories.pdf_bytes(1), intake.PDF_MIME),
    "docx": (factories.docx_bytes, intake.DOCX_MIME),
    "docm": (lambda: factories.ooxml_bytes("word/document.xml", DOCM_TYPES), intake.DOCM_MIME),
    "xlsx": (lambda: factories.ooxml_bytes("xl/workbook.xml", XLSX_TYPES), intake.XLSX_MIME),
    "pptx": (lambda: factories.ooxml_bytes("ppt/presentation.xml"), intake.PPTX_MIME),
    "zip": (lambda: factories.zip_bytes({"notes.txt": b"hello"}), intake.ZIP_MIME),
    "utf-8 text": (lambda: "Visite 2 – patient signé ✓\n".encode() * 5000, intake.TEXT_MIME),
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(64), intake.PNG_MIME),
    "jpeg": (lambda: b"\xff\xd8\xff\xe0" + bytes(64), intake.JPEG_MIME),
    "tiff": (lambda: b"II*\x00" + bytes(64), intake.TIFF_MIME),
    "windows exe": (lambda: b"MZ\x90\x00" + bytes(200),
                    "application/vnd.microsoft.portable-executable"),
    "elf": (lambda: b"\x7fELF\x02\x01\x01" + bytes(200), "application/x-executable"),
    "legacy office": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
                      "application/x-ole-storage"),
    "password-protected docx": (factories.encrypted_office_bytes, intake.ENCRYPTED_OFFICE_MIME),
    "latin-1 text": (lambda: "caf\xe9 cr\xe8me".encode("latin-1"), intake.UNKNOWN_MIME),
    "binary": (lambda: bytes(range(256)) * 4, intake.UNKNOWN_MIME),
}


@pytest.mark.req("OPS-2")
@pytest.mark.parametrize("case", sorted(CASES))
def test_type_is_detected_from_content_not_from_the_name(
    case: str, write_file: Callable[[str, bytes], Path]
) -> None:
    make, expected_mime = CASES[case]
    path = write_file("upload.pdf", make())  # the name always claims PDF

    assert sniff(path).mime == expected_mime


def test_text_cut_inside_a_multibyte_character_at_64_kb_is_still_text(
    write_file: Callable[[str, bytes], Path]
) -> None:
    data = b"a" * (64 * 1024 - 1) + "é".encode()  # the é straddles the sniffing window
    assert sniff(write_file("notes", data)).mime == intake.TEXT_MIME


def test_damaged_zip_is_only_a_zip(write_file: Callable[[str, bytes], Path]) -> None:
    data = factories.docx_bytes()
    assert sniff(write_file("half.docx", data[: len(data) // 2])).mime == intake.ZIP_MIME

"""Uploads are accepted or refused before anything is stored, with a message a person reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from etmf.documents import intake
from etmf.documents.intake import (
    DEFAULT_ALLOWED_TYPES,
    IntakeLimits,
    IntakeResult,
    RejectedFile,
    inspect_upload,
)
from tests.unit.documents import factories
from tests.unit.documents.conftest import RecordingRunner

WriteFile = Callable[[str, bytes], Path]
LIMIT = 10 * 1024 * 1024
PDF_ONLY = frozenset({intake.PDF_MIME})


def accept(path: Path, name: str, runner: RecordingRunner, **kwargs: object) -> IntakeResult:
    options: dict[str, object] = {"max_bytes": LIMIT, "allowed_types": DEFAULT_ALLOWED_TYPES}
    options.update(kwargs)
    return inspect_upload(path, name, runner=runner, **options)  # type: ignore[arg-type]


def refuse(path: Path, name: str, runner: RecordingRunner, **kwargs: object) -> RejectedFile:
    with pytest.raises(RejectedFile) as caught:
        accept(path, name, runner, **kwargs)
    return caught.value


# ---- accepted files -------------------------------------------------------------------


@pytest.mark.req("OPS-2")
def test_valid_pdf_is_accepted_with_its_page_count_hash_and_size(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.pdf_bytes(pages=3)
    path = write_file("spooled-upload", data)

    result = accept(path, "../Protocol v2.pdf", runner)

    assert result.detected.mime == intake.PDF_MIME
    assert result.page_count == 3
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)
    assert result.filename == "Protocol v2.pdf"


@pytest.mark.req("OPS-2")
def test_valid_docx_is_accepted(write_file: WriteFile, runner: RecordingRunner) -> None:
    path = write_file("upload", factories.docx_bytes(("Informed consent", "Version 3")))

    result = accept(path, "ICF.docx", runner)

    assert result.detected.mime == intake.DOCX_MIME
    assert result.page_count is None


def test_plain_text_is_accepted(write_file: WriteFile, runner: RecordingRunner) -> None:
    path = write_file("upload", "Monitoring visit notes – site 104\n".encode())

    assert accept(path, "notes.txt", runner).detected.mime == intake.TEXT_MIME


def test_pdf_without_an_extension_is_accepted(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", factories.pdf_bytes(1))

    assert accept(path, "scan", runner).detected.mime == intake.PDF_MIME


# ---- size -----------------------------------------------------------------------------


@pytest.mark.req("OPS-2")
def test_empty_file_is_refused(write_file: WriteFile, runner: RecordingRunner) -> None:
    refusal = refuse(write_file("upload", b""), "blank.pdf", runner)

    assert refusal.code == "empty"
    assert refusal.message == "The file 'blank.pdf' is empty."


@pytest.mark.req("OPS-2")
def test_file_over_the_size_limit_is_refused_stating_the_limit(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", b"%PDF-1.7\n" + bytes(700 * 1024))

    refusal = refuse(path, "big.pdf", runner, max_bytes=1024 * 1024 // 2)

    assert refusal.code == "too_large"
    assert refusal.message == "The file 'big.pdf' is 0.7 MB, larger than the limit of 0.5 MB."
    assert runner.calls == []


# ---- type by content and by name ------------------------------------------------------


@pytest.mark.req("OPS-2")
def test_windows_executable_renamed_pdf_is_refused_saying_what_it_is(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", b"MZ\x90\x00\x03" + bytes(500))

    refusal = refuse(path, "invoice.pdf", runner)

    assert refusal.code == "wrong_type"
    assert refusal.message == (
        "The file 'invoice.pdf' is not a PDF: its content is a Windows executable."
    )
    assert runner.calls == []


@pytest.mark.req("OPS-2")
def test_linux_executable_renamed_pdf_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    refusal = refuse(write_file("upload", b"\x7fELF\x02\x01" + bytes(500)), "cv.pdf", runner)

    assert refusal.code == "wrong_type"
    assert "its content is a Linux executable" in refusal.message


@pytest.mark.req("OPS-2")
def test_unrecognised_content_named_pdf_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    refusal = refuse(write_file("upload", bytes(range(256)) * 8), "scan.pdf", runner)

    assert refusal.code == "wrong_type"
    assert refusal.message.startswith("The file 'scan.pdf' is not a PDF: its content is in a")


def test_refusal_shows_the_sanitised_name_not_bidi_tricks(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", b"MZ" + bytes(100))

    refusal = refuse(path, "invoice\u202efdp.exe", runner)

    assert refusal.filename == "invoicefdp.exe"
    assert "'invoicefdp.exe'" in refusal.message
    assert "\u202e" not in refusal.message


def test_type_that_is_recognised_but_not_allowed_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", factories.docx_bytes())

    refusal = refuse(path, "consent.docx", runner, allowed_types=PDF_ONLY)

    assert refusal.code == "wrong_type"
    assert "its content is a Word document (DOCX)" in refusal.message


@pytest.mark.req("OPS-2")
def test_pdf_named_docx_is_refused_as_an_extension_mismatch(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    refusal = refuse(write_file("upload", factories.pdf_bytes(1)), "report.docx", runner)

    assert refusal.code == "extension_mismatch"
    assert "'report.docx'" in refusal.message
    assert "its content is a PDF" in refusal.message
    assert "'.pdf'" in refusal.message


def test_plain_zip_is_not_taken_for_a_word_document(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", factories.zip_bytes({"readme.txt": b"hello"}))

    refusal = refuse(path, "bundle.docx", runner)

    assert refusal.code == "wrong_type"
    assert "its content is a ZIP archive" in refusal.message


@pytest.mark.req("OPS-2")
def test_password_protected_office_document_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    refusal = refuse(write_file("upload", factories.encrypted_office_bytes()), "ICF.docx", runner)

    assert refusal.code == "encrypted"
    assert "'ICF.docx' is a password-protected Office document" in refusal.message


# ---- PDF structure --------------------------------------------------------------------


@pytest.mark.req("OPS-2")
def test_encrypted_pdf_is_refused(write_file: WriteFile, runner: RecordingRunner) -> None:
    path = write_file("upload", factories.encrypted_pdf_bytes())

    refusal = refuse(path, "locked.pdf", runner)

    assert refusal.code == "encrypted"
    assert refusal.message == (
        "The PDF 'locked.pdf' is password-protected or encrypted; upload an unencrypted copy."
    )


@pytest.mark.req("OPS-2")
def test_truncated_pdf_is_refused_as_damaged(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.pdf_bytes(3)
    path = write_file("upload", data[: len(data) // 2])

    refusal = refuse(path, "cut.pdf", runner)

    assert refusal.code == "malformed"
    assert refusal.message.startswith("The PDF 'cut.pdf' is damaged")


@pytest.mark.req("OPS-2")
def test_pdf_with_a_broken_page_tree_is_refused_as_damaged(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.pdf_bytes(3).replace(b"/Kids", b"/Kidz")

    refusal = refuse(write_file("upload", data), "broken.pdf", runner)

    assert refusal.code == "malformed"
    assert "'broken.pdf'" in refusal.message
    assert runner.calls == ["_pdf_structure"]


@pytest.mark.req("OPS-2")
def test_pdf_whose_parser_raises_is_refused_not_crashed(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    # A header, an end marker and garbage between: pypdf raises on it.
    data = b"%PDF-1.7\n" + b"1 0 obj << /Type /Catalog /Pages 2 0 R" + b"\x00" * 50 + b"\n%%EOF\n"

    refusal = refuse(write_file("upload", data), "fuzzed.pdf", runner)

    assert refusal.code == "malformed"
    assert refusal.message.startswith("The PDF 'fuzzed.pdf' is damaged or not a valid PDF")


# ---- archives (DOCX) ------------------------------------------------------------------


@pytest.mark.req("OPS-2")
def test_zip_bomb_is_refused_before_python_docx_opens_it(
    zip_bomb: Path, runner: RecordingRunner
) -> None:
    refusal = refuse(zip_bomb, "trial-master.docx", runner)

    assert refusal.code == "archive_bomb"
    assert "'trial-master.docx'" in refusal.message
    assert "zip bomb" in refusal.message
    assert runner.calls == []


@pytest.mark.req("OPS-2")
def test_archive_over_the_uncompressed_size_limit_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("upload", factories.docx_bytes())
    limits = IntakeLimits(max_uncompressed_bytes=10_000)

    refusal = refuse(path, "ICF.docx", runner, limits=limits)

    assert refusal.code == "archive_bomb"
    assert "would expand to" in refusal.message
    assert runner.calls == []


@pytest.mark.req("OPS-2")
def test_archive_with_too_many_entries_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    entries = {f"word/media/image{n}.png": b"x" for n in range(20)}
    data = factories.ooxml_bytes("word/document.xml", extra=entries)

    refusal = refuse(write_file("upload", data), "ICF.docx", runner,
                     limits=IntakeLimits(max_zip_entries=10))

    assert refusal.code == "archive_bomb"
    assert "holds 22 parts, more than the limit of 10" in refusal.message


@pytest.mark.req("OPS-2")
def test_archive_with_an_encrypted_entry_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.set_encrypted_flag(factories.docx_bytes(), "word/document.xml")

    refusal = refuse(write_file("upload", data), "ICF.docx", runner)

    assert refusal.code == "encrypted"
    assert runner.calls == []


@pytest.mark.req("OPS-2")
@pytest.mark.parametrize("entry", ["../../etc/cron.d/evil", "/etc/passwd", "C:/boot.ini",
                                   "word\\..\\..\\evil.dll", "word/\u202efdp.exe"])
def test_archive_with_a_path_trick_in_an_entry_name_is_refused(
    entry: str, write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.ooxml_bytes("word/document.xml", extra={entry: b"payload"})

    refusal = refuse(write_file("upload", data), "ICF.docx", runner)

    assert refusal.code == "bad_name"
    assert "'ICF.docx'" in refusal.message
    assert "\u202e" not in refusal.message


def test_archive_with_a_duplicated_entry_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    content_types = factories.CONTENT_TYPES_DOCX.encode()
    data = factories.zip_pairs([("[Content_Types].xml", content_types),
                                ("word/document.xml", b"<a/>"), ("word/document.xml", b"<b/>")])

    refusal = refuse(write_file("upload", data), "ICF.docx", runner)

    assert refusal.code == "malformed"
    assert "twice" in refusal.message


@pytest.mark.req("OPS-2")
def test_truncated_docx_is_refused_as_damaged(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.docx_bytes()
    refusal = refuse(write_file("upload", data[: len(data) // 2]), "ICF.docx", runner)

    assert refusal.code == "malformed"
    assert refusal.message.startswith("The file 'ICF.docx' is damaged")


@pytest.mark.req("OPS-2")
def test_docx_that_python_docx_cannot_read_is_refused(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.ooxml_bytes("word/document.xml")  # no relationships, a stub part

    refusal = refuse(write_file("upload", data), "ICF.docx", runner)

    assert refusal.code == "malformed"
    assert refusal.message.startswith(
        "The Word document 'ICF.docx' is damaged or not a valid Word document"
    )
    assert runner.calls == ["_docx_structure"]

"""Text is extracted for search within time and memory bounds; a failure is a value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from etmf.documents.extract import DOCX_MIME, PDF_MIME, TEXT_MIME, extract_text
from tests.unit.documents import factories
from tests.unit.documents.conftest import RecordingRunner

WriteFile = Callable[[str, bytes], Path]


def test_pdf_text_and_page_count_are_extracted(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("protocol.pdf", factories.pdf_bytes(3, words="Randomisation schedule"))

    result = extract_text(path, PDF_MIME, runner=runner)

    assert result.error is None
    assert result.pages == 3
    assert "Randomisation schedule page 1" in result.text
    assert "Randomisation schedule page 3" in result.text
    assert not result.truncated


def test_docx_paragraphs_and_table_cells_are_extracted(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.docx_bytes(
        ("Informed consent form", "Version 4.0"),
        table=(("Visit", "Procedure"), ("Screening", "Electrocardiogram")),
    )
    path = write_file("icf.docx", data)

    result = extract_text(path, DOCX_MIME, runner=runner)

    assert result.error is None
    for words in ("Informed consent form", "Version 4.0", "Screening", "Electrocardiogram"):
        assert words in result.text


def test_plain_text_is_extracted_without_its_byte_order_mark(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("notes.txt", "\ufeffMonitoring visit – site 104 ✓\n".encode())

    result = extract_text(path, TEXT_MIME, runner=runner)

    assert result.text == "Monitoring visit – site 104 ✓\n"
    assert result.error is None


def test_text_beyond_the_character_limit_is_dropped_and_flagged(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("long.txt", b"adverse event " * 1000)

    result = extract_text(path, TEXT_MIME, max_chars=100, runner=runner)

    assert len(result.text) == 100
    assert result.truncated


def test_pdf_pages_beyond_the_character_limit_are_not_read(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("protocol.pdf", factories.pdf_bytes(5, words="Dosing"))

    result = extract_text(path, PDF_MIME, max_chars=40, runner=runner)

    assert result.truncated
    assert "Dosing page 1" in result.text
    assert "Dosing page 5" not in result.text
    assert result.pages == 5


@pytest.mark.req("OPS-2")
def test_extraction_over_its_time_bound_returns_an_error_instead_of_hanging(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    # 40 full pages take pypdf hundreds of milliseconds; the bound is one millisecond.
    path = write_file("brochure.pdf", factories.long_pdf_bytes(pages=40))

    result = extract_text(path, PDF_MIME, timeout_s=0.001, runner=runner)

    assert result.error == "Text extraction stopped after 0.001 s."
    assert result.text == ""


@pytest.mark.req("OPS-2")
def test_parser_exception_on_a_malformed_pdf_becomes_an_error(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    data = factories.pdf_bytes(3)
    path = write_file("cut.pdf", data[: len(data) // 3])

    result = extract_text(path, PDF_MIME, runner=runner)

    assert result.error is not None
    assert result.error.startswith("Text extraction failed: the file could not be read")


@pytest.mark.req("OPS-2")
def test_garbage_passed_as_docx_becomes_an_error(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("fake.docx", b"PK\x03\x04 this is not really a zip")

    result = extract_text(path, DOCX_MIME, runner=runner)

    assert result.error is not None
    assert "could not be read" in result.error


def test_encrypted_pdf_yields_an_error_not_garbage(
    write_file: WriteFile, runner: RecordingRunner
) -> None:
    path = write_file("locked.pdf", factories.encrypted_pdf_bytes())

    result = extract_text(path, PDF_MIME, runner=runner)

    assert result.error is not None
    assert "encrypted" in result.error


def test_missing_file_becomes_an_error(tmp_path: Path, runner: RecordingRunner) -> None:
    result = extract_text(tmp_path / "gone.pdf", PDF_MIME, runner=runner)

    assert result.error is not None
    assert "FileNotFoundError" in result.error


def test_images_have_no_text_and_no_error(write_file: WriteFile) -> None:
    path = write_file("scan.png", b"\x89PNG\r\n\x1a\n")

    result = extract_text(path, "image/png")

    assert (result.text, result.error) == ("", None)


def test_unsupported_type_is_reported(write_file: WriteFile) -> None:
    path = write_file("sheet.xlsx", b"PK\x03\x04")

    result = extract_text(path, "application/vnd.ms-excel")

    assert result.error == (
        "Text extraction is not available for files of type application/vnd.ms-excel."
    )

"""Uploaded file names are made safe to store, show and write back to a disk."""

from __future__ import annotations

import unicodedata

import pytest

from etmf.documents.intake import sanitize_filename


@pytest.mark.req("OPS-2")
@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\drivers.sys", "drivers.sys"),
        ("/var/www/index.html", "index.html"),
        ("C:\\Users\\amy\\Protocol v2.pdf", "Protocol v2.pdf"),
        ("C:report.pdf", "report.pdf"),
        ("subdir/../../../consent.docx", "consent.docx"),
    ],
)
def test_directories_are_stripped_from_the_name(declared: str, expected: str) -> None:
    assert sanitize_filename(declared) == expected


@pytest.mark.req("OPS-2")
def test_control_characters_and_nul_are_removed() -> None:
    assert sanitize_filename("re\x00po\x1b[31mrt\r\n\t.pdf") == "repo[31mrt.pdf"


@pytest.mark.req("OPS-2")
def test_right_to_left_override_cannot_disguise_an_executable() -> None:
    name = sanitize_filename("invoice\u202efdp.exe")

    assert name == "invoicefdp.exe"
    assert not any(unicodedata.category(char) == "Cf" for char in name)


def test_other_bidi_and_invisible_format_characters_are_removed() -> None:
    assert sanitize_filename("\u2067report\u2069\u200b\ufeff.pdf") == "report.pdf"


def test_letters_of_every_script_are_kept() -> None:
    assert sanitize_filename("治験実施計画書 – Ünïcødé.pdf") == "治験実施計画書 – Ünïcødé.pdf"


def test_name_is_nfc_normalised() -> None:
    assert sanitize_filename("Re\u0301sume\u0301.pdf") == "Résumé.pdf"


@pytest.mark.req("OPS-2")
def test_very_long_unicode_name_is_shortened_keeping_its_extension() -> None:
    name = sanitize_filename("é" * 300 + ".pdf")

    assert name.endswith(".pdf")
    assert len(name) <= 200
    assert len(name.encode("utf-8")) <= 255
    assert set(name.removesuffix(".pdf")) == {"é"}


def test_long_ascii_name_keeps_200_characters() -> None:
    name = sanitize_filename("a" * 300 + ".docx")

    assert name == "a" * 195 + ".docx"


@pytest.mark.parametrize("declared", ["CON.pdf", "nul", "com1.txt", "LPT9.docx", "aux .pdf"])
def test_reserved_windows_device_names_are_prefixed(declared: str) -> None:
    name = sanitize_filename(declared)

    assert name.startswith("_")
    assert name[1:].upper().startswith(declared[:3].upper())


@pytest.mark.parametrize("declared", ["", "   ", "..", "../", "\u202e", "\x00\x01", "C:\\"])
def test_name_is_never_empty(declared: str) -> None:
    assert sanitize_filename(declared) == "unnamed"


def test_hidden_file_dot_and_trailing_dots_are_removed() -> None:
    assert sanitize_filename(".htaccess") == "htaccess"
    assert sanitize_filename("report.pdf. . ") == "report.pdf"


def test_characters_windows_forbids_are_replaced() -> None:
    assert sanitize_filename('a<b>c"d|e?f*.pdf') == "a_b_c_d_e_f_.pdf"

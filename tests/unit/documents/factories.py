"""Builders of test files, generated in code so that every fixture says what it contains."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import docx
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

MIB = 1024 * 1024

CONTENT_TYPES_DOCX = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)


def pdf_bytes(pages: int = 3, words: str = "Protocol amendment") -> bytes:
    """A valid PDF whose page N reads '<words> page N'."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for number in range(1, pages + 1):
        text = pdf.beginText(72, 760)
        text.textLine(f"{words} page {number}")
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def long_pdf_bytes(pages: int) -> bytes:
    """A PDF with a full page of text on every page, slow enough to extract to time out."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for number in range(pages):
        text = pdf.beginText(40, 800)
        for line in range(60):
            text.textLine(f"Investigator brochure section {number}.{line} adverse event listing")
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypted_pdf_bytes() -> bytes:
    """A valid PDF protected with a user password (AES-256)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(1))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def docx_bytes(paragraphs: tuple[str, ...] = ("Informed consent form",),
               table: tuple[tuple[str, ...], ...] = ()) -> bytes:
    """A valid DOCX with the given paragraphs followed by a table of the given rows."""
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A ZIP of the given entries; duplicate names are allowed through a list of pairs."""
    return zip_pairs(list(entries.items()))


def zip_pairs(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which we want
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def ooxml_bytes(main_part: str, content_types: str = CONTENT_TYPES_DOCX,
                extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal Office Open XML package with one main part (enough for sniffing)."""
    entries = {"[Content_Types].xml": content_types.encode(), main_part: b"<x/>"}
    entries.update(extra or {})
    return zip_bytes(entries)


def set_encrypted_flag(data: bytes, entry: str) -> bytes:
    """Mark ``entry`` as encrypted in the central directory, as a password-zipped file is."""
    marker = b"PK\x01\x02"
    position = data.find(marker)
    while position >= 0:
        name_length = struct.unpack("<H", data[position + 28: position + 30])[0]
        name = data[position + 46: position + 46 + name_length].decode()
        if name == entry:
            flags = struct.unpack("<H", data[position + 8: position + 10])[0] | 0x1
            return data[: position + 8] + struct.pack("<H", flags) + data[position + 10:]
        position = data.find(marker, position + 4)
    raise ValueError(f"{entry} not in the archive")


def write_deflate_bomb(path: Path, uncompressed_mib: int) -> None:
    """A DOCX-shaped zip whose word/document.xml inflates to ``uncompressed_mib`` MB of zeros.

    Deflating 200 MB takes a second; with a full flush after each 1 MB chunk every chunk
    compresses to the same bytes, so the stream is built by repetition in milliseconds.
    The result is a real, valid zip: zipfile inflates it and the CRC matches.
    """
    chunk = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * uncompressed_mib + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(uncompressed_mib):
        crc = zlib.crc32(chunk, crc)
    content_types = CONTENT_TYPES_DOCX.encode()
    members = [
        ("[Content_Types].xml", 0, content_types, zlib.crc32(content_types), len(content_types)),
        ("word/document.xml", 8, stream, crc, uncompressed_mib * MIB),
    ]
    with open(path, "wb") as out:
        directory = b""
        for name, method, data, member_crc, size in members:
            encoded = name.encode()
            offset = out.tell()
            out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0,
                                  member_crc, len(data), size, len(encoded), 0))
            out.write(encoded)
            out.write(data)
            directory += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0,
                                     member_crc, len(data), size, len(encoded), 0, 0, 0, 0, 0,
                                     offset) + encoded
        start = out.tell()
        out.write(directory)
        out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members),
                              len(directory), start, 0))


def encrypted_office_bytes() -> bytes:
    """The shape of a password-protected DOCX: an OLE2 file with an EncryptedPackage stream."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    directory = "EncryptedPackage".encode("utf-16-le") + bytes(96)
    return header + directory + bytes(1024)

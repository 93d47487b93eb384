"""Inspection copies: "Inspection copy — name — UTC time" on every page, on the fly.

The stored record is never touched: the mark is added to the bytes on their way out. It is
appended as an incremental update, so the original revision (and any signature over it)
stays byte for byte inside the copy, and a validator reports the mark as a later change.
"""

from __future__ import annotations

import io
from datetime import datetime

from etmf.clock import utc_iso

#: Refuse to mark absurdly large files in the request (the mark is made in memory).
MAX_PAGES = 2000


class WatermarkError(Exception):
    """The PDF could not be marked; it is then not served to the inspector."""


def mark_text(name: str, at: datetime) -> str:
    return f"Inspection copy — {name} — {utc_iso(at)[:19].replace('T', ' ')} UTC"


def _overlay(width: float, height: float, text: str):  # type: ignore[no-untyped-def]
    from pypdf import PdfReader
    from reportlab.lib.colors import Color
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, height), invariant=1)
    c.setFillColor(Color(0.8, 0.1, 0.1, alpha=0.35))
    c.setFont("Helvetica-Bold", max(10.0, min(width, height) / 28))
    c.saveState()
    c.translate(width / 2, height / 2)
    c.rotate(35)
    c.drawCentredString(0, 0, text)
    c.restoreState()
    c.setFillColor(Color(0.6, 0.0, 0.0, alpha=0.9))
    c.setFont("Helvetica", 8)
    c.drawString(18, 10, text)
    c.showPage()
    c.save()
    return PdfReader(io.BytesIO(buf.getvalue())).pages[0]


def inspection_copy(data: bytes, name: str, at: datetime) -> bytes:
    """The PDF with the inspection mark on every page; raises WatermarkError if it cannot."""
    from pypdf import PdfReader, PdfWriter, Transformation

    text = mark_text(name, at)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise WatermarkError("The PDF is encrypted, so it cannot be marked as a copy.")
        if len(reader.pages) > MAX_PAGES:
            raise WatermarkError(f"The PDF has more than {MAX_PAGES} pages.")
        writer = PdfWriter(io.BytesIO(data), incremental=True)
        overlays: dict[tuple[float, float], object] = {}
        for page in writer.pages:
            box = page.mediabox
            size = (float(box.width), float(box.height))
            if size not in overlays:
                overlays[size] = _overlay(size[0], size[1], text)
            page.merge_transformed_page(
                overlays[size],  # type: ignore[arg-type]
                Transformation().translate(float(box.left), float(box.bottom)),
            )
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    except WatermarkError:
        raise
    except Exception as exc:  # a parser fails in many ways; each means the same here
        raise WatermarkError(
            f"The PDF could not be read to mark it ({exc.__class__.__name__}).") from None

"""Word documents rendered to PDF with LibreOffice headless, so that they can be signed.

Each conversion runs ``soffice --headless --convert-to pdf`` in a fresh temporary folder with
its own user profile (``-env:UserInstallation``): conversions never share or lock a profile,
and nothing is left behind. A conversion that takes longer than the timeout is killed.
Where LibreOffice is not installed, :func:`soffice_path` is ``None`` and callers ask for a
PDF rendition to be uploaded instead.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from etmf.errors import ValidationError

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
WORD_MIMES = frozenset({DOCX_MIME, "application/msword"})
TIMEOUT_SECONDS = 120
#: A signable PDF rendition is at most this large (a runaway conversion is refused).
MAX_PDF_BYTES = 512 * 1024 * 1024

NO_LIBREOFFICE = (
    "This version is a Word document. Signatures are applied to PDF, and this server has no "
    "LibreOffice to render it: upload a PDF rendition as a new version, have it approved, "
    "and request signatures on that.")


class RenditionFailed(ValidationError):
    code = "rendition_failed"
    title = "The document could not be rendered to PDF"


def is_word(mime: str) -> bool:
    return mime in WORD_MIMES


def soffice_path() -> str | None:
    """The LibreOffice executable, or ``None`` when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def converter_name() -> str:
    exe = soffice_path()
    if exe is None:
        return "none"
    try:
        out = subprocess.run([exe, "--headless", "--version"], capture_output=True, text=True,
                             timeout=60, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "LibreOffice"
    return " ".join(out.split()[:2])[:100] or "LibreOffice"


def word_to_pdf(data: bytes, suffix: str = ".docx", *, timeout: int = TIMEOUT_SECONDS) -> bytes:
    """The PDF rendition of a Word document. Raises :class:`RenditionFailed`, or
    :class:`ValidationError` with :data:`NO_LIBREOFFICE` when LibreOffice is absent."""
    exe = soffice_path()
    if exe is None:
        raise ValidationError(NO_LIBREOFFICE)
    with tempfile.TemporaryDirectory(prefix="etmf-render-") as tmp:
        folder = Path(tmp)
        source = folder / f"document{suffix}"
        source.write_bytes(data)
        out = folder / "out"
        command = [exe, f"-env:UserInstallation={(folder / 'profile').as_uri()}",
                   "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                   "--convert-to", "pdf", "--outdir", str(out), str(source)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False, cwd=folder, env=_environment(folder))
        except subprocess.TimeoutExpired:
            raise RenditionFailed(
                f"LibreOffice did not finish rendering the document to PDF within {timeout} "
                "seconds. Upload a PDF rendition instead.") from None
        result = out / "document.pdf"
        if done.returncode != 0 or not result.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RenditionFailed(
                "LibreOffice could not render this Word document to PDF "
                f"({detail[0][:200]}). Check that the file opens in Word or LibreOffice, or "
                "upload a PDF rendition instead.")
        pdf = result.read_bytes()
    if not pdf.startswith(b"%PDF-") or len(pdf) > MAX_PDF_BYTES:
        raise RenditionFailed("LibreOffice did not produce a usable PDF. Upload a PDF "
                              "rendition instead.")
    return pdf


def _environment(folder: Path) -> dict[str, str]:
    """A minimal environment; LibreOffice writes its caches under HOME, so HOME is the
    conversion's own folder."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}

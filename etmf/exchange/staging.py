"""An uploaded EMS package kept between the dry run and the import, so it is sent once.

The dry run stores the package in blob storage (content-addressed, so storing it again is
free) and the report page carries a signed token naming its SHA-256, the user and the study.
"Import" presents the token; nobody can make the form name another user's package, and a token
older than :data:`PACKAGE_MAX_AGE_S` is refused. Blob storage is not seekable, so the package is
copied to a temporary file for reading as a zip.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import IO, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from etmf.errors import ValidationError

#: The report must be acted on within this time; after it the page says to upload again.
PACKAGE_MAX_AGE_S = 24 * 3600
#: Packages larger than this are imported as a background job (with a progress bar).
BACKGROUND_BYTES = 50 * 1024 * 1024
CHUNK = 1024 * 1024


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="etmf-ems-package")


def package_token(secret_key: str, user_id: int | None, study_id: int, sha256: str,
                  size: int) -> str:
    return _serializer(secret_key).dumps({"u": user_id, "s": study_id, "sha": sha256,
                                          "size": size})


def read_package_token(secret_key: str, token: str, user_id: int | None,
                       study_id: int) -> tuple[str, int]:
    """(SHA-256, size) of the package a token names, or :class:`ValidationError`."""
    try:
        data = _serializer(secret_key).loads(token, max_age=PACKAGE_MAX_AGE_S)
    except BadSignature:
        raise ValidationError("This dry run report has expired or the form was altered; "
                              "upload the package again.") from None
    if data.get("u") != user_id or data.get("s") != study_id:
        raise ValidationError("This dry run report belongs to another user or study; upload "
                              "the package again.")
    return str(data["sha"]), int(data["size"])


def store_package(blobs: Any, spool: IO[bytes]) -> tuple[str, int]:
    """Keep the uploaded package (already spooled) in blob storage; (SHA-256, size)."""
    spool.seek(0)
    ref = blobs.put(spool)
    spool.seek(0)
    return ref.sha256, ref.size


def open_package(blobs: Any, sha256: str) -> IO[bytes]:
    """The stored package as a seekable temporary file (the caller closes it)."""
    if not blobs.exists(sha256):
        raise ValidationError("The package of this dry run is no longer stored; upload it "
                              "again.")
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, who closes it
    try:
        with blobs.open(sha256) as reader:
            shutil.copyfileobj(reader, spool, CHUNK)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool

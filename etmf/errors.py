"""The one hierarchy of domain errors, mapped to HTTP status in one place (etmf.web.errors).

Every message is written for the person who will read it: what happened and what to do.
"""

from __future__ import annotations


class EtmfError(Exception):
    """Base of every error the server reports to a person."""

    status = 400
    code = "bad_request"
    title = "The request could not be processed"

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class SettingsError(EtmfError):
    """A setting has a wrong value; raised at start-up."""

    status = 500
    code = "misconfigured"
    title = "The server is misconfigured"


class ValidationError(EtmfError):
    status = 400
    code = "invalid"
    title = "Some of the information is not valid"


class NotFound(EtmfError):
    status = 404
    code = "not_found"
    title = "Not found"


class Forbidden(EtmfError):
    status = 403
    code = "forbidden"
    title = "You are not allowed to do this"


class InvalidTransition(EtmfError):
    status = 409
    code = "invalid_transition"
    title = "This step is not possible now"


class Conflict(EtmfError):
    """Someone else changed the same record first (optimistic concurrency)."""

    status = 409
    code = "conflict"
    title = "Someone else changed this record"


class ReasonRequired(ValidationError):
    code = "reason_required"
    title = "A reason is required"


class BadUpload(EtmfError):
    status = 400
    code = "bad_upload"
    title = "The file was refused"


class UploadTooLarge(BadUpload):
    status = 413
    code = "too_large"
    title = "The file is too large"


class SignatureError(EtmfError):
    status = 400
    code = "signature_error"
    title = "The document could not be signed"


class ServiceUnavailable(EtmfError):
    """A backing service (database, storage, search) cannot be reached."""

    status = 503
    code = "unavailable"
    title = "A service the server needs is unavailable"

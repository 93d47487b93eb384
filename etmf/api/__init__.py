"""The JSON API under ``/api/v1``: token authentication, errors as JSON, OpenAPI document.

Requests authenticate with ``Authorization: Bearer <token>`` (a personal token from the
profile page, stored hashed, with an expiry) or with the browser session. CSRF protection is
skipped for token-authenticated calls only: a browser never sends the header by itself.
Other areas add endpoints to ``bp`` (import it) and describe them with
:func:`etmf.api.openapi.register_path`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from flask_login import current_user

from etmf.errors import EtmfError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _exempt_from_global_csrf() -> None:
    # The global check is skipped for the API; _authenticate applies it to session calls.
    from etmf.accounts.security import csrf

    csrf.exempt(bp)


_exempt_from_global_csrf()

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(EtmfError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


@bp.before_request
def _authenticate() -> None:
    from etmf.accounts.guards import enforce_read_only
    from etmf.accounts.security import csrf
    from etmf.accounts.tokens import user_for_token

    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
        user = user_for_token(token.strip())
        g._login_user = user  # Flask-Login's current user, for this request only
        g.etmf_token_auth = True
        g.pop("etmf_access", None)
    elif request.method not in ("GET", "HEAD", "OPTIONS"):
        if not getattr(current_user, "is_authenticated", False):
            # 401 before the CSRF check: an anonymous caller has no session to protect, and
            # a client that merely forgot its token should be told so, not "bad form".
            raise Unauthorized("Sign in, or send 'Authorization: Bearer <token>'.")
        csrf.protect()  # a browser session: the usual CSRF check
    enforce_read_only()


#: Public name for other areas' API blueprints: ``bp.before_request(authenticate_request)``.
authenticate_request = _authenticate

#: An id in a path: a positive 32-bit integer.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def api_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint for an area's endpoints under ``/api/v1`` that authenticates like the core
    API: token or session, 401 for anonymous writes, CSRF for session writes only."""
    from etmf.accounts.security import csrf

    area = Blueprint(name, import_name, url_prefix="/api/v1")
    area.before_request(_authenticate)
    csrf.exempt(area)
    return area


def path_id(name: str) -> dict[str, Any]:
    """OpenAPI parameter for an id in the path."""
    return {"name": name, "in": "path", "required": True, "schema": ID_SCHEMA}


def json_response(schema: str, description: str, status: str = "200") -> dict[str, Any]:
    """OpenAPI response whose JSON body is the named component schema."""
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


def api_auth(fn: F) -> F:
    """Require a signed-in user (token or session); 401 JSON otherwise."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not getattr(current_user, "is_authenticated", False):
            raise Unauthorized("Sign in, or send 'Authorization: Bearer <token>'.")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@bp.get("/openapi.json")
def openapi_json():  # type: ignore[no-untyped-def]
    from etmf.api.openapi import document

    return jsonify(document())


from etmf.api import endpoints  # noqa: E402,F401  (registers the first endpoints on bp)

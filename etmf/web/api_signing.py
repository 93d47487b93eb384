"""REST API for signing (``/api/v1``): sign a signature request as the authenticated user.

Works with a personal API token (``Authorization: Bearer …``) as with the browser session,
but neither is ever enough on its own: the signer's password (and the authenticator code
where one is enrolled) must be in the JSON body of every signing call (SIG-4), and the body
may not name a signer - the signer is always the authenticated user (SIG-5).
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path
from etmf.audit.store import Context
from etmf.bootstrap import services
from etmf.errors import ValidationError
from etmf.web import db_session
from etmf.web.signing import SIGNER_NAMING_FIELDS, _link
from etmf.workflows import services as workflow

bp = api_blueprint("api_signing", __name__)

register_path("/signatures/requests/{request_id}/sign", "post", {
    "summary": "Sign a signature request as the authenticated user (password every time)",
    "operationId": "signRequest",
    "parameters": [{"name": "request_id", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["password", "confirm"], "additionalProperties": False,
        "properties": {
            "password": {"type": "string", "description": "The signer's password, checked "
                         "again for this signature even with a token or session"},
            "totp": {"type": "string", "description": "The authenticator code, where one "
                     "is enrolled"},
            "confirm": {"type": "boolean", "description": "true: the signer confirms the "
                        "meaning of the signature"}}}}}},
    "responses": {
        "201": {"description": "Signed: the new document version that carries the signature",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"request_id": {"type": "integer"},
                                   "document_id": {"type": "integer"},
                                   "version": {"type": "integer"},
                                   "signed_at": {"type": "string"},
                                   "meaning": {"type": "string"},
                                   "level": {"type": "string"}}}}}},
        "400": {"description": "Missing password, code or confirmation; a signer named"},
        "401": {"description": "Wrong password or code: nothing signed, counts to lockout"},
        "409": {"description": "Not this signer's turn, or the request changed meanwhile"}}})


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError('Send a JSON object: {"password": "…", "confirm": true}.')
    return body


@bp.post("/signatures/requests/<int:request_id>/sign")
@api_auth
def sign(request_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    workflow.visible_request(db_session(), access, request_id)  # 404 for outsiders
    body = _body()
    named = SIGNER_NAMING_FIELDS & ({k.lower() for k in body} | {k.lower() for k in request.args})
    if named:
        raise ValidationError(
            "This call takes no signer: you always sign as yourself, the authenticated user. "
            f"Remove {', '.join(sorted(named))} from the request. Nothing was signed.")
    password, totp = body.get("password"), body.get("totp")
    if not isinstance(password, str | None) or not isinstance(totp, str | None):
        raise ValidationError("password and totp must be strings. Nothing was signed.")
    if body.get("confirm") is not True:
        raise ValidationError('Confirm the meaning of your signature with "confirm": true. '
                              "Nothing was signed.")
    result = workflow.sign(services(), access,
                           Context(request_id=g.get("request_id"),
                                   client_addr=request.remote_addr),
                           request_id, password=password, totp=totp, link=_link)
    return jsonify({"request_id": result.request_id, "document_id": result.document_id,
                    "version": result.version_number, "signed_at": result.signed_at.isoformat(),
                    "meaning": result.meaning, "level": result.level}), 201

"""The OpenAPI 3 document of ``/api/v1``, built from a registry every area adds to.

An area describes each endpoint it adds next to the view::

    from etmf.api.openapi import register_path, register_schema
    register_schema("Document", {...})
    register_path("/documents/{document_id}", "get", {"summary": ..., "responses": {...}})

Paths are relative to ``/api/v1``. Operations are secured by the bearer token unless the
spec says ``"security": []``. Every operation gets the shared error responses (401, 403,
404, 500) unless it lists its own.
"""

from __future__ import annotations

import copy
from typing import Any

from etmf import __version__

_PATHS: dict[str, dict[str, dict[str, Any]]] = {}
_SCHEMAS: dict[str, dict[str, Any]] = {}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["status", "code", "title", "message"],
        "properties": {
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "title": {"type": "string"},
            "message": {"type": "string"},
            "request_id": {"type": "string"},
            "detail": {"type": "object"},
        },
    }},
}

_ERRORS = {
    "400": "The request is not valid",
    "401": "No valid token or session",
    "403": "Not allowed for this user's role",
    "404": "No such thing, or no access to it",
    "409": "Someone else changed it first",
}


def register_schema(name: str, schema: dict[str, Any]) -> None:
    if name in _SCHEMAS and _SCHEMAS[name] != schema:
        raise RuntimeError(f"two different OpenAPI schemas named {name!r}")
    _SCHEMAS[name] = schema


def register_path(path: str, method: str, spec: dict[str, Any]) -> None:
    """Describe one operation (``path`` relative to /api/v1, e.g. ``/studies/{study_id}``)."""
    method = method.lower()
    if not path.startswith("/"):
        raise ValueError(f"OpenAPI path {path!r} must start with '/'")
    if method in _PATHS.get(path, {}) and _PATHS[path][method] != spec:
        raise RuntimeError(f"two OpenAPI descriptions of {method.upper()} {path}")
    _PATHS.setdefault(path, {})[method] = spec


def registered_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, ops in _PATHS.items() for method in ops}


def document(server_url: str = "/api/v1") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path in sorted(_PATHS):
        paths[path] = {}
        for method, spec in sorted(_PATHS[path].items()):
            op = copy.deepcopy(spec)
            responses = op.setdefault("responses", {})
            for status, text in _ERRORS.items():
                if status == "401" and op.get("security") == []:
                    continue
                responses.setdefault(status, {
                    "description": text,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}})
            paths[path][method] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "eTMF API", "version": __version__,
                 "description": "Authenticate with `Authorization: Bearer <token>`; create "
                                "a token on your profile page. All times are UTC."},
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, **copy.deepcopy(_SCHEMAS)},
        },
    }

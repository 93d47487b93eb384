"""Offline check that one audit event is in the eTMF server's signed audit log.

Run as ``python -m etmf.audit.proofcheck bundle.json`` or, with only this file and the
``cryptography`` package, as ``python proofcheck.py bundle.json``. It prints one line per check
and exits 0 only when every check passes (1: a check failed, 2: the bundle cannot be read).
Pass ``--key-id HEX`` with the server key fingerprint published by the sponsor, so that a bundle
signed by any other key is refused: the key inside the bundle alone proves only that *someone*
signed it.

This file deliberately imports nothing from the rest of the eTMF code: an inspector can read and
audit one short file, and the server cannot change how its own proofs are judged. The few
RFC 9162 hashing lines it needs are therefore copied here rather than imported.

Bundle format ``etmf-audit-proof-v1`` (a JSON object, produced by ``etmf audit prove EVENT_ID``)::

    {
      "format": "etmf-audit-proof-v1",
      "event_canonical": "<the event's canonical JSON encoding, as a string>",
      "event_hash": "<lowercase hex SHA-256 of event_canonical encoded as UTF-8>",
      "index": <leaf index = the event's global sequence number - 1>,
      "inclusion_path": ["<hex node>", ...],   // RFC 9162 §2.1.3.1, leaf end first
      "tree_head": {                           // the signed checkpoint
        "tree_size": <int>, "root_hash": "<hex>", "issued_at": "<RFC 3339 UTC, 'Z'>",
        "key_id": "<hex SHA-256 of the raw Ed25519 public key>",
        "signature": "<base64 Ed25519 signature>", "timestamp_token": "<base64>" | null
      },
      "public_key_pem": "<the server's Ed25519 public key, SubjectPublicKeyInfo PEM>"
    }

Checks, in order:

1. bundle format: the object has the fields above with the right types.
2. event hash: SHA-256(event_canonical as UTF-8) equals event_hash.
3. inclusion proof: the leaf SHA-256(0x00 || bytes.fromhex(event_hash)) at ``index`` is in the
   tree of ``tree_size`` leaves whose root is ``root_hash`` (RFC 9162 §2.1.3.2 algorithm, with
   node hashes SHA-256(0x01 || left || right)).
4. tree head signature: ``key_id`` names the bundled key, and the Ed25519 signature verifies
   over the UTF-8 bytes ``"etmf-audit-checkpoint-v1\\n{tree_size}\\n{root_hash}\\n{issued_at}\\n"``.
5. signing key (only with ``--key-id``): the key is the one the inspector expected.

The optional RFC 3161 ``timestamp_token`` is not checked here; any RFC 3161 tool can check it
against SHA-256 of the decoded signature bytes.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["BUNDLE_FORMAT", "CheckResult", "check_bundle", "main"]

BUNDLE_FORMAT = "etmf-audit-proof-v1"
CHECKPOINT_HEADER = "etmf-audit-checkpoint-v1\n"

CheckResult = tuple[str, bool, str]

_HEX = frozenset("0123456789abcdef")


class BundleError(ValueError):
    """The bundle lacks a field or has one of the wrong shape."""


# --- RFC 9162 §2.1 hashing, copied on purpose (see the module docstring) ----------------------


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_from_inclusion_path(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes]
) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the path leads to, or None when the path has the wrong shape."""
    if not 0 <= index < tree_size:
        return None
    fn, sn = index, tree_size - 1
    r = _leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# --- reading the bundle -------------------------------------------------------------------------


def _field(obj: Any, name: str, kind: type) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise BundleError(f"field {name!r} is missing")
    value = obj[name]
    # bool is an int in Python; true is not a tree size.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"field {name!r} must be a {kind.__name__}")
    return value


def _hex32(text: str, what: str) -> bytes:
    if len(text) != 64 or not set(text) <= _HEX:
        raise BundleError(f"{what} must be 64 lowercase hex characters")
    return bytes.fromhex(text)


def _inclusion_path(bundle: Any) -> list[bytes]:
    nodes = _field(bundle, "inclusion_path", list)
    if not all(isinstance(node, str) for node in nodes):
        raise BundleError("inclusion_path must be a list of hex strings")
    return [_hex32(node, f"inclusion_path[{i}]") for i, node in enumerate(nodes)]


def _tree_size(bundle: Any) -> int:
    size = _field(_field(bundle, "tree_head", dict), "tree_size", int)
    if size < 0:
        raise BundleError("tree_size must not be negative")
    return int(size)


# --- the checks -----------------------------------------------------------------------------


def _check_format(bundle: Any) -> str:
    if _field(bundle, "format", str) != BUNDLE_FORMAT:
        raise BundleError(f"format must be {BUNDLE_FORMAT!r}; this checker knows no other")
    _field(bundle, "event_canonical", str)
    _hex32(_field(bundle, "event_hash", str), "event_hash")
    _field(bundle, "index", int)
    _inclusion_path(bundle)
    head = _field(bundle, "tree_head", dict)
    _tree_size(bundle)
    _hex32(_field(head, "root_hash", str), "root_hash")
    for name in ("issued_at", "key_id", "signature"):
        _field(head, name, str)
    _field(bundle, "public_key_pem", str)
    return BUNDLE_FORMAT


def _check_event_hash(bundle: Any) -> str:
    canonical: str = _field(bundle, "event_canonical", str)
    claimed: str = _field(bundle, "event_hash", str)
    actual = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    if actual != claimed:
        raise BundleError(f"the event's SHA-256 is {actual}, but the bundle claims {claimed}")
    return f"SHA-256 of the event is {actual}"


def _check_inclusion(bundle: Any) -> str:
    leaf = _hex32(_field(bundle, "event_hash", str), "event_hash")
    index: int = _field(bundle, "index", int)
    path = _inclusion_path(bundle)
    head = _field(bundle, "tree_head", dict)
    size = _tree_size(bundle)
    root = _hex32(_field(head, "root_hash", str), "root_hash")
    if _root_from_inclusion_path(leaf, index, size, path) != root:
        raise BundleError(
            f"the path does not lead from event {index + 1} to the root of a "
            f"{size}-event log signed in the tree head"
        )
    return f"event {index + 1} is in the log of {size} events with root {root.hex()}"


def _public_key(bundle: Any) -> Ed25519PublicKey:
    pem: str = _field(bundle, "public_key_pem", str)
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except ValueError as exc:
        raise BundleError("public_key_pem is not a readable PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("public_key_pem is not an Ed25519 key")
    return key


def _key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _check_signature(bundle: Any) -> str:
    head = _field(bundle, "tree_head", dict)
    key = _public_key(bundle)
    named: str = _field(head, "key_id", str)
    if named != _key_id(key):
        raise BundleError(f"the tree head names key {named}, not the bundled key {_key_id(key)}")
    size = _tree_size(bundle)
    root: str = _field(head, "root_hash", str)
    issued: str = _field(head, "issued_at", str)
    try:
        signature = base64.b64decode(_field(head, "signature", str), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError("signature is not valid base64") from exc
    message = f"{CHECKPOINT_HEADER}{size}\n{root}\n{issued}\n".encode()
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise BundleError("the Ed25519 signature does not match the tree head") from exc
    return f"tree head of {issued} signed by key {named}"


def _check_expected_key(bundle: Any, expected_key_id: str) -> str:
    actual = _key_id(_public_key(bundle))
    if actual != expected_key_id.strip().lower():
        raise BundleError(f"the bundle is signed by key {actual}, not the expected one")
    return f"key {actual} is the expected one"


def _run(name: str, check: Callable[[], str]) -> CheckResult:
    try:
        return (name, True, check())
    except BundleError as exc:
        return (name, False, str(exc))


def check_bundle(bundle: dict[str, Any], expected_key_id: str | None = None) -> list[CheckResult]:
    """Run every check on a decoded bundle; return ``(name, passed, explanation)`` per check.

    Every check runs even after one fails, so that the report shows all that is wrong.
    """
    results = [
        _run("bundle format", lambda: _check_format(bundle)),
        _run("event hash", lambda: _check_event_hash(bundle)),
        _run("inclusion proof", lambda: _check_inclusion(bundle)),
        _run("tree head signature", lambda: _check_signature(bundle)),
    ]
    if expected_key_id is not None:
        results.append(_run("signing key", lambda: _check_expected_key(bundle, expected_key_id)))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m etmf.audit.proofcheck",
        description="Check offline that one audit event is in the eTMF server's signed log.",
    )
    parser.add_argument("bundle", help="proof bundle JSON written by 'etmf audit prove'")
    parser.add_argument("--key-id", help="expected server key id (hex SHA-256 of the raw key)")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, encoding="utf-8") as handle:
            bundle = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"cannot read the proof bundle {args.bundle}: {exc}", file=sys.stderr)
        return 2
    results = check_bundle(bundle, args.key_id)
    for name, passed, detail in results:
        print(f"{name}: {'OK' if passed else 'FAILED'} ({detail})")
    if all(passed for _, passed, _ in results):
        print("result: VERIFIED")
        return 0
    print("result: NOT VERIFIED")
    return 1


if __name__ == "__main__":
    sys.exit(main())

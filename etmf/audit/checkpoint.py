"""Signed tree heads ("checkpoints") of the audit log.

A checkpoint fixes the size and Merkle root (``merkle.py``) of the audit log at one moment and is
signed with the server's Ed25519 key. It is kept in the database and outside it (a file or an
Object-Locked S3 key), so that deleting the newest events is detected: the shorter log no longer
reaches the signed size, or no longer hashes to the signed root.

Signed message, version 1 (UTF-8, every line ends with a single LF, no trailing spaces)::

    etmf-audit-checkpoint-v1
    <tree_size as decimal, no leading zeros>
    <root_hash as 64 lowercase hex characters>
    <issued_at as RFC 3339 UTC, e.g. 2024-05-01T12:00:00Z>

The signature is plain Ed25519 (RFC 8032) over exactly those bytes, stored base64-encoded. The
key id is the lowercase hex SHA-256 of the 32-byte raw public key. A third party can verify with
any tool, e.g. with OpenSSL 3::

    printf 'etmf-audit-checkpoint-v1\\n%s\\n%s\\n%s\\n' SIZE ROOT TIME > msg
    base64 -d <<< SIGNATURE > sig
    openssl pkeyutl -verify -pubin -inkey server.pub.pem -rawin -in msg -sigfile sig

JSON form (``SignedTreeHead.to_json``): the six fields below as one object, keys sorted, no
spaces. ``timestamp_token`` is optional and not covered by the signature: it is an RFC 3161
token over the signature itself, added later by ``attach_timestamp`` (see ``timestamp_imprint``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from etmf.audit.merkle import HASH_SIZE, MerkleAccumulator

__all__ = [
    "MESSAGE_HEADER",
    "CheckpointError",
    "CheckpointKeyError",
    "LogDoesNotMatchCheckpoint",
    "SignedTreeHead",
    "attach_timestamp",
    "check_log_against_tree_head",
    "format_issued_at",
    "generate_signing_key",
    "key_id",
    "load_private_key",
    "parse_issued_at",
    "public_key_pem",
    "save_private_key",
    "sign_tree_head",
    "timestamp_imprint",
    "tree_head_message",
    "verify_tree_head",
]

MESSAGE_HEADER: Final = b"etmf-audit-checkpoint-v1\n"

_FIELDS: Final = (
    "issued_at",
    "key_id",
    "root_hash",
    "signature",
    "timestamp_token",
    "tree_size",
)


class CheckpointError(ValueError):
    """A checkpoint is malformed or cannot be produced as asked."""


class CheckpointKeyError(CheckpointError):
    """The server's checkpoint key cannot be stored or read."""


class LogDoesNotMatchCheckpoint(CheckpointError):
    """The audit log is shorter than, or differs from, what a signed checkpoint recorded."""


@dataclass(frozen=True)
class SignedTreeHead:
    """One signed checkpoint of the audit log; see the module docstring for the signed bytes."""

    tree_size: int
    root_hash: str
    issued_at: str
    key_id: str
    signature: str
    timestamp_token: str | None = None

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces), the form stored outside the database."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SignedTreeHead:
        """Parse ``to_json`` output; refuse anything with missing, extra or mistyped fields."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> SignedTreeHead:
        """Build from a decoded JSON object, checking each field's type and shape."""
        if not isinstance(data, dict):
            raise CheckpointError("checkpoint must be a JSON object")
        data = {"timestamp_token": None, **data}
        if set(data) != set(_FIELDS):
            missing = sorted(set(_FIELDS) - set(data))
            extra = sorted(set(data) - set(_FIELDS))
            raise CheckpointError(f"checkpoint fields wrong: missing {missing}, unexpected {extra}")
        tree_size = data["tree_size"]
        # bool is an int in Python; a checkpoint of size True is nonsense.
        if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
            raise CheckpointError("checkpoint tree_size must be a non-negative integer")
        for name in ("root_hash", "issued_at", "key_id", "signature"):
            if not isinstance(data[name], str):
                raise CheckpointError(f"checkpoint {name} must be a string")
        if not _is_lower_hex(data["root_hash"], HASH_SIZE):
            raise CheckpointError("checkpoint root_hash must be 64 lowercase hex characters")
        if not _is_lower_hex(data["key_id"], 32):
            raise CheckpointError("checkpoint key_id must be 64 lowercase hex characters")
        parse_issued_at(data["issued_at"])
        token = data["timestamp_token"]
        if token is not None and not isinstance(token, str):
            raise CheckpointError("checkpoint timestamp_token must be a base64 string or null")
        return cls(
            tree_size=tree_size,
            root_hash=data["root_hash"],
            issued_at=data["issued_at"],
            key_id=data["key_id"],
            signature=data["signature"],
            timestamp_token=token,
        )

    @property
    def root_hash_bytes(self) -> bytes:
        """The root hash as 32 raw bytes."""
        return bytes.fromhex(self.root_hash)


def _is_lower_hex(text: str, size: int) -> bool:
    return len(text) == 2 * size and all(c in "0123456789abcdef" for c in text)


def format_issued_at(issued_at: datetime) -> str:
    """RFC 3339 UTC with a 'Z' (microseconds only when present); refuse naive datetimes."""
    offset = issued_at.utcoffset()
    if offset is None:
        raise CheckpointError("the checkpoint time must carry a time zone (use the UTC clock)")
    utc = (issued_at - offset).replace(tzinfo=None)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def tree_head_message(tree_size: int, root_hash: str, issued_at: str) -> bytes:
    """The exact bytes that are signed (version 1, see the module docstring)."""
    return MESSAGE_HEADER + f"{tree_size}\n{root_hash}\n{issued_at}\n".encode()


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 key for signing checkpoints."""
    return Ed25519PrivateKey.generate()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte public key: what a checkpoint names its key by."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM, to publish and to put in proof bundles."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def save_private_key(
    key: Ed25519PrivateKey,
    path: str | os.PathLike[str],
    passphrase: bytes | None,
    *,
    overwrite: bool = False,
) -> None:
    """Write the key as PKCS#8 PEM, encrypted when a passphrase is given, readable by owner only.

    The file appears whole or not at all (written to a temporary file, then linked into place),
    and an existing key is not replaced unless ``overwrite`` is set: losing the checkpoint key
    would make every earlier checkpoint unverifiable against a new one.
    """
    target = Path(path)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    if target.exists() and not overwrite:
        raise CheckpointKeyError(f"a checkpoint key already exists at {target}; not replacing it")
    # mkstemp creates the file with mode 0o600, so the key is never readable by others.
    fd, tmp_name = tempfile.mkstemp(prefix=".key-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            try:
                os.link(tmp_name, target)
            except FileExistsError as exc:
                raise CheckpointKeyError(
                    f"a checkpoint key already exists at {target}; not replacing it"
                ) from exc
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_private_key(path: str | os.PathLike[str], passphrase: bytes | None) -> Ed25519PrivateKey:
    """Read a key written by ``save_private_key``; explain a wrong or missing passphrase."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read the checkpoint key at {path}: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        # cryptography raises TypeError for "password given but not encrypted" and the reverse.
        problem = (
            "is not encrypted, but a passphrase was given"
            if passphrase
            else "is encrypted: a passphrase is needed"
        )
        raise CheckpointKeyError(f"the checkpoint key at {path} {problem}") from exc
    except ValueError as exc:
        raise CheckpointKeyError(
            f"cannot decrypt or parse the checkpoint key at {path} (wrong passphrase?)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"the key at {path} is not an Ed25519 key")
    return key


def sign_tree_head(
    key: Ed25519PrivateKey, tree_size: int, root_hash_bytes: bytes, issued_at: datetime
) -> SignedTreeHead:
    """Sign the tree head ``(tree_size, root)`` at ``issued_at`` (from the server's UTC clock)."""
    if tree_size < 0:
        raise CheckpointError(f"a tree size cannot be negative ({tree_size})")
    if len(root_hash_bytes) != HASH_SIZE:
        raise CheckpointError(f"a root hash is 32 bytes, not {len(root_hash_bytes)}")
    root_hex = root_hash_bytes.hex()
    issued = format_issued_at(issued_at)
    signature = key.sign(tree_head_message(tree_size, root_hex, issued))
    return SignedTreeHead(
        tree_size=tree_size,
        root_hash=root_hex,
        issued_at=issued,
        key_id=key_id(key.public_key()),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def _load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CheckpointKeyError("the public key is not a valid PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointKeyError("the public key is not an Ed25519 key")
    return key


def verify_tree_head(sth: SignedTreeHead, public_key_pem: str) -> bool:
    """True when ``sth`` was signed by this key and names it; False for any mismatch.

    Raises ``CheckpointKeyError`` only when the PEM itself is unusable, which is a configuration
    error rather than a bad checkpoint.
    """
    public = _load_public_key(public_key_pem)
    if sth.key_id != key_id(public):
        return False
    try:
        signature = base64.b64decode(sth.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    message = tree_head_message(sth.tree_size, sth.root_hash, sth.issued_at)
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def timestamp_imprint(sth: SignedTreeHead) -> bytes:
    """SHA-256 of the signature bytes: the message imprint to send to an RFC 3161 TSA.

    Time-stamping the signature (not the message) proves the signature existed at that time.
    """
    return hashlib.sha256(base64.b64decode(sth.signature)).digest()


def attach_timestamp(sth: SignedTreeHead, token_bytes: bytes) -> SignedTreeHead:
    """Return a copy of ``sth`` carrying a DER RFC 3161 token; checking the token is the caller's."""
    if not token_bytes:
        raise CheckpointError("an empty time-stamp token cannot be attached")
    return dataclasses.replace(sth, timestamp_token=base64.b64encode(token_bytes).decode("ascii"))


def check_log_against_tree_head(leaves: Iterable[bytes], sth: SignedTreeHead) -> None:
    """Raise ``LogDoesNotMatchCheckpoint`` unless the log's first ``sth.tree_size`` leaves hash
    to ``sth.root_hash``.

    This is the truncation check: a log cut short, or rewritten, after the checkpoint no longer
    reaches the signed size or root. Verify the signature separately with ``verify_tree_head``.
    Streams the leaves in O(log n) memory; leaves beyond the checkpoint are not read.
    """
    acc = MerkleAccumulator().extend(itertools.islice(leaves, sth.tree_size))
    if acc.size < sth.tree_size:
        raise LogDoesNotMatchCheckpoint(
            f"the audit log has only {acc.size} events, but the checkpoint of {sth.issued_at} "
            f"signed {sth.tree_size}: events after sequence {acc.size} are missing"
        )
    if acc.root().hex() != sth.root_hash:
        raise LogDoesNotMatchCheckpoint(
            f"the first {sth.tree_size} audit events do not hash to the root signed in the "
            f"checkpoint of {sth.issued_at}: at least one of them was changed"
        )


def parse_issued_at(text: str) -> datetime:
    """Parse an ``issued_at`` written by this module back to an aware UTC datetime."""
    if not text.endswith("Z"):
        raise CheckpointError(f"checkpoint time {text!r} is not UTC with a 'Z'")
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError as exc:
        raise CheckpointError(f"checkpoint time {text!r} is not RFC 3339") from exc
    if parsed.utcoffset() != timedelta(0):
        raise CheckpointError(f"checkpoint time {text!r} is not UTC")
    return parsed

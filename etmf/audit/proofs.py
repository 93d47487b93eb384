"""Server side of offline proofs: build the bundle that ``etmf audit prove EVENT_ID`` writes.

The bundle format is documented in ``proofcheck.py``, the standalone verifier an inspector runs.
The server refuses to produce a bundle that would not verify: a failure here means the stored
event, the log or the checkpoint is already inconsistent, which must be reported, not exported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

from etmf.audit.checkpoint import SignedTreeHead, verify_tree_head
from etmf.audit.merkle import MerkleError, inclusion_proof, verify_inclusion

__all__ = ["BUNDLE_FORMAT", "ProofError", "build_proof_bundle"]

BUNDLE_FORMAT: Final = "etmf-audit-proof-v1"


class ProofError(ValueError):
    """A proof bundle cannot be built because the event, log and checkpoint disagree."""


def build_proof_bundle(
    event_canonical: str,
    event_hash: str,
    index: int,
    leaves: Sequence[bytes],
    sth: SignedTreeHead,
    public_key_pem: str,
) -> dict[str, Any]:
    """Return a JSON-ready proof that event ``index + 1`` is in the log signed by ``sth``.

    ``leaves`` is the log's leaf data (each event's 32-byte hash, in sequence order), at least
    ``sth.tree_size`` long; it is read by index. Cost: O(sth.tree_size) hashes.
    """
    seq = index + 1
    if hashlib.sha256(event_canonical.encode("utf-8")).hexdigest() != event_hash:
        raise ProofError(f"event {seq} does not match its stored hash; run 'etmf audit verify'")
    if not 0 <= index < sth.tree_size:
        raise ProofError(
            f"event {seq} is not covered by the checkpoint of {sth.issued_at}, which ends at "
            f"event {sth.tree_size}; wait for the next checkpoint"
        )
    if len(leaves) < sth.tree_size:
        raise ProofError(
            f"the audit log has {len(leaves)} events but the checkpoint of {sth.issued_at} "
            f"signed {sth.tree_size}: the log was truncated"
        )
    leaf = bytes.fromhex(event_hash)
    if leaves[index] != leaf:
        raise ProofError(f"event {seq} in the log does not carry the hash given for it")
    if not verify_tree_head(sth, public_key_pem):
        raise ProofError(f"the checkpoint of {sth.issued_at} is not signed by the given key")
    try:
        path = inclusion_proof(leaves, index, sth.tree_size)
    except MerkleError as exc:
        raise ProofError(str(exc)) from exc
    if not verify_inclusion(leaf, index, sth.tree_size, path, sth.root_hash_bytes):
        raise ProofError(
            f"the first {sth.tree_size} events do not hash to the root signed at "
            f"{sth.issued_at}: the log changed after the checkpoint"
        )
    return {
        "format": BUNDLE_FORMAT,
        "event_canonical": event_canonical,
        "event_hash": event_hash,
        "index": index,
        "inclusion_path": [node.hex() for node in path],
        "tree_head": {
            "tree_size": sth.tree_size,
            "root_hash": sth.root_hash,
            "issued_at": sth.issued_at,
            "key_id": sth.key_id,
            "signature": sth.signature,
            "timestamp_token": sth.timestamp_token,
        },
        "public_key_pem": public_key_pem,
    }

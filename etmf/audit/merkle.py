"""Merkle tree over the audit log, as RFC 9162 (Certificate Transparency v2) §2.1 defines it.

Why a Merkle tree next to the hash chain: the chain proves that no event was edited or removed
*in the middle*, but deleting the newest events leaves a shorter chain that still verifies. A
signed tree head (see ``checkpoint.py``) fixes the size and content of the log at a moment;
inclusion proofs let an inspector check one event against it offline, and consistency proofs
show that a later log still contains an earlier one unchanged.

Hashing (RFC 9162 §2.1.1):

* leaf hash  = SHA-256(0x00 || leaf data)
* node hash  = SHA-256(0x01 || left child hash || right child hash)
* empty tree = SHA-256 of the empty string

For the audit log, the leaf data of event *seq* (1-based) is the 32 raw bytes of its own SHA-256
hash (``bytes.fromhex(event.hash)``) at leaf index ``seq - 1``. The functions here accept leaf
data of any length, so the published RFC test vectors apply unchanged.

Cost, with n = tree size:

* ``tree_head`` and ``MerkleAccumulator``: one pass, 2n - 1 hashes, O(log n) memory.
* ``inclusion_proof`` and ``consistency_proof``: one O(n) pass over the needed leaves
  (read by index, never copied), O(log n) memory besides the proof.
* ``MerkleLog``: O(n) time and memory once, then each proof or root in O(log^2 n) hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeAlias

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleAccumulator",
    "MerkleError",
    "MerkleLog",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "tree_head",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# Pre-fed hash objects: copying one is measurably cheaper in CPython than building a fresh
# hash object, and the hot loop of tree_head runs 2n times.
_LEAF_PREFIX: Final = hashlib.sha256(b"\x00")
_NODE_PREFIX: Final = hashlib.sha256(b"\x01")


# Returns MTH(D[start:end]); lets the proof walks share one body for both leaf sources.
_SubtreeFn: TypeAlias = Callable[[int, int], bytes]


class MerkleError(ValueError):
    """A Merkle computation was asked for something the tree does not have."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 9162 hash of one leaf: SHA-256(0x00 || leaf)."""
    h = _LEAF_PREFIX.copy()
    h.update(leaf)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    h = _NODE_PREFIX.copy()
    h.update(left)
    h.update(right)
    return h.digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleAccumulator:
    """Streaming tree head: feed leaves in order, read the root at any point.

    Keeps only the roots of the perfect subtrees that make up the tree so far (one per set bit
    of the size), so memory is O(log n). The frontier can be stored and the accumulator resumed
    later with ``from_frontier``, which lets a periodic checkpoint job hash only new events.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        # Roots of perfect subtrees, largest (leftmost) first.
        self._frontier: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> MerkleAccumulator:
        """Resume from a saved ``(size, frontier)``; refuse one that cannot belong to ``size``."""
        if size < 0 or len(frontier) != size.bit_count():
            raise MerkleError(
                f"a frontier for {size} leaves must hold {max(size, 0).bit_count()} subtree "
                f"hashes, not {len(frontier)}"
            )
        if any(len(h) != HASH_SIZE for h in frontier):
            raise MerkleError("every frontier hash must be 32 bytes")
        acc = cls()
        acc._size = size
        acc._frontier = list(frontier)
        return acc

    @property
    def size(self) -> int:
        """Number of leaves added so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees covering the leaves so far, leftmost first."""
        return tuple(self._frontier)

    def append(self, leaf: bytes) -> None:
        """Add one leaf."""
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> MerkleAccumulator:
        """Add leaves in order; returns self so that calls can be chained."""
        # Locals instead of attribute look-ups: this loop is the whole cost of a tree head.
        leaf_copy = _LEAF_PREFIX.copy
        node_copy = _NODE_PREFIX.copy
        stack = self._frontier
        push = stack.append
        pop = stack.pop
        size = self._size
        for leaf in leaves:
            h = leaf_copy()
            h.update(leaf)
            digest = h.digest()
            size += 1
            # Each trailing zero bit of the new size is a pair of equal subtrees to merge.
            n = size
            while not n & 1:
                h = node_copy()
                h.update(pop())
                h.update(digest)
                digest = h.digest()
                n >>= 1
            push(digest)
        self._size = size
        return self

    def root(self) -> bytes:
        """Root hash of the leaves so far (SHA-256 of b"" for none)."""
        if not self._frontier:
            return EMPTY_ROOT
        # The RFC tree is left-balanced: fold the frontier from the right.
        root = self._frontier[-1]
        for left in reversed(self._frontier[:-1]):
            root = node_hash(left, root)
        return root


def tree_head(leaves: Iterable[bytes]) -> tuple[int, bytes]:
    """Return ``(tree_size, root_hash)`` of the leaves, streaming in O(log n) memory.

    This is what a checkpoint signs; pass the leaves as a generator over the event table so
    that a million events never sit in memory at once.
    """
    acc = MerkleAccumulator().extend(leaves)
    return acc.size, acc.root()


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) read by index, so that a lazy Sequence is never sliced or copied."""
    return MerkleAccumulator().extend(map(leaves.__getitem__, range(start, end))).root()


def _check_tree_size(leaves: Sequence[bytes], tree_size: int) -> None:
    if tree_size < 0 or tree_size > len(leaves):
        raise MerkleError(
            f"tree size {tree_size} is outside the log, which has {len(leaves)} leaves"
        )


def inclusion_proof(leaves: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.3.1 inclusion path of leaf ``index`` in the first ``tree_size``.

    The path lists sibling subtree roots from the leaf up to the root. O(tree_size) hashes,
    because every leaf but the proven one is hashed into some sibling exactly once.
    """
    _check_tree_size(leaves, tree_size)
    if not 0 <= index < tree_size:
        raise MerkleError(f"leaf index {index} is not in a tree of {tree_size} leaves")
    return _inclusion_path(lambda a, b: _subtree_root(leaves, a, b), index, 0, tree_size)


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 proof that the first ``old_size`` leaves are a prefix of
    the first ``new_size``.

    Empty when ``old_size`` is 0 or equal to ``new_size`` (nothing to prove). O(new_size) hashes.
    """
    _check_tree_size(leaves, new_size)
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"old size {old_size} must be between 0 and the new size {new_size}")
    if old_size in (0, new_size):
        return []
    return _consistency_path(lambda a, b: _subtree_root(leaves, a, b), old_size, 0, new_size)


def _inclusion_path(subtree: _SubtreeFn, index: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) iteratively; siblings are collected top-down, returned bottom-up."""
    siblings: list[bytes] = []
    m = index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            siblings.append(subtree(start + k, end))
            end = start + k
        else:
            siblings.append(subtree(start, start + k))
            start += k
            m -= k
    siblings.reverse()
    return siblings


def _consistency_path(subtree: _SubtreeFn, old_size: int, start: int, end: int) -> list[bytes]:
    """SUBPROOF(m, D[start:end], true) of RFC 9162 §2.1.4.1, iteratively, bottom-up order."""
    nodes: list[bytes] = []
    m = old_size
    complete = True  # the RFC's flag b: is the current old subtree a whole subtree of the old tree
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            nodes.append(subtree(start + k, end))
            end = start + k
        else:
            nodes.append(subtree(start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        nodes.append(subtree(start, end))
    nodes.reverse()
    return nodes


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until fn is odd or zero (steps 4.b.ii and 6.b.iii of RFC 9162)."""
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the RFC 9162 §2.1.3.2 algorithm.

    ``leaf`` is the leaf *data* (for the audit log: the event's 32-byte hash); its leaf hash is
    computed here. Returns False, never raises, for any proof that does not verify.
    """
    if not 0 <= index < tree_size:
        return False
    if len(root) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Check a consistency proof with the RFC 9162 §2.1.4.2 algorithm.

    Stricter than the RFC at the edges, because a checkpoint of an empty log is still a claim:
    size 0 is consistent only when ``old_root`` is the empty-tree root, and equal sizes only
    when the roots are equal; both need an empty proof. Returns False, never raises.
    """
    if not 0 <= old_size <= new_size:
        return False
    if len(old_root) != HASH_SIZE or len(new_root) != HASH_SIZE:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one: its root is the first node.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleLog:
    """A snapshot of the log with every perfect subtree hash cached, for many proofs at once.

    Construction hashes all leaves once (O(n) time, about 2n cached hashes of memory: roughly
    130 MB for a million events in CPython); afterwards each root, inclusion proof or
    consistency proof for any tree size up to ``size`` costs O(log^2 n) hashes. Use it for
    ``etmf audit verify`` over many checkpoints; use the plain functions for one proof.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        # Hashing inline rather than through leaf_hash/node_hash: the call overhead would double
        # the construction time of a million-leaf snapshot.
        sha256 = hashlib.sha256
        level = [sha256(b"\x00" + leaf).digest() for leaf in leaves]
        # _levels[j][i] is the root of the perfect subtree over leaves [i * 2^j, (i + 1) * 2^j).
        self._levels: list[list[bytes]] = [level]
        while len(level) > 1:
            pairs = zip(level[0::2], level[1::2], strict=False)
            level = [sha256(b"\x01" + left + right).digest() for left, right in pairs]
            self._levels.append(level)

    @property
    def size(self) -> int:
        """Number of leaves in the snapshot."""
        return len(self._levels[0])

    def _check_size(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise MerkleError(
                f"tree size {tree_size} is outside the log, which has {self.size} leaves"
            )

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that the RFC recursion produces (start is aligned)."""
        blocks: list[bytes] = []
        pos = start
        while pos < end:
            # Largest aligned perfect block that starts at pos and fits before end.
            height = (end - pos).bit_length() - 1
            if pos:
                height = min(height, (pos & -pos).bit_length() - 1)
            blocks.append(self._levels[height][pos >> height])
            pos += 1 << height
        if not blocks:
            return EMPTY_ROOT
        root = blocks[-1]
        for left in reversed(blocks[:-1]):
            root = node_hash(left, root)
        return root

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash of the first ``tree_size`` leaves (default: all)."""
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion path of leaf ``index`` in the first ``tree_size`` leaves."""
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        if not 0 <= index < size:
            raise MerkleError(f"leaf index {index} is not in a tree of {size} leaves")
        return _inclusion_path(self._subtree, index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` leaves."""
        size = self.size if new_size is None else new_size
        self._check_size(size)
        if not 0 <= old_size <= size:
            raise MerkleError(f"old size {old_size} must be between 0 and the new size {size}")
        if old_size in (0, size):
            return []
        return _consistency_path(self._subtree, old_size, 0, size)

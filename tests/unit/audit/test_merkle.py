"""RFC 9162 Merkle tree: published test vectors and an exhaustive check against a naive model."""

from __future__ import annotations

import hashlib

import pytest

from etmf.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    MerkleError,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_head,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency reference vectors (transparency-dev/merkle proof/verify_test.go, the
# same values as google/certificate-transparency's C++ tests): leaf data and the root of the
# tree made of the first 1..8 of them.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# (leaf index, tree size, path) -- the Go file counts leaves from 1; these are 0-based.
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

MAX_LEAVES = 20
# Audit-log-shaped leaves: the 32-byte hash of each event.
LEAVES = [hashlib.sha256(f"event {i}".encode()).digest() for i in range(MAX_LEAVES)]


# --- a deliberately naive model, written straight from the RFC's recursive definitions ---------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_consistency(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True) if 0 < m < len(d) else []


def flipped(proof: list[bytes], i: int) -> list[bytes]:
    node = bytearray(proof[i])
    node[0] ^= 0x08
    return proof[:i] + [bytes(node)] + proof[i + 1 :]


# --- published vectors ----------------------------------------------------------------------------


def test_empty_log_has_the_rfc_empty_root() -> None:
    assert tree_head([]) == (0, hashlib.sha256(b"").digest())
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleLog([]).root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_head_matches_certificate_transparency_roots(size: int) -> None:
    assert tree_head(CT_LEAVES[:size]) == (size, CT_ROOTS[size - 1])
    assert MerkleLog(CT_LEAVES).root(size) == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_proof_matches_certificate_transparency_vectors(
    index: int, size: int, path: list[str]
) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert inclusion_proof(CT_LEAVES, index, size) == expected
    assert MerkleLog(CT_LEAVES).inclusion_proof(index, size) == expected
    assert verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_consistency_proof_matches_certificate_transparency_vectors(
    old: int, new: int, path: list[str]
) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert consistency_proof(CT_LEAVES, old, new) == expected
    assert MerkleLog(CT_LEAVES).consistency_proof(old, new) == expected
    assert verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], expected)


# --- exhaustive against the naive model -----------------------------------------------------------


def test_tree_head_equals_the_recursive_definition_for_every_small_size() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]
    for size in range(71):
        assert tree_head(iter(leaves[:size])) == (size, ref_mth(leaves[:size])), size


def test_every_inclusion_proof_up_to_twenty_leaves_is_rfc_exact_and_verifies() -> None:
    log = MerkleLog(LEAVES)
    for size in range(1, MAX_LEAVES + 1):
        root = ref_mth(LEAVES[:size])
        for index in range(size):
            expected = ref_path(index, LEAVES[:size])
            assert inclusion_proof(LEAVES, index, size) == expected, (index, size)
            assert log.inclusion_proof(index, size) == expected, (index, size)
            assert verify_inclusion(LEAVES[index], index, size, expected, root)


def test_inclusion_proof_is_refused_for_any_other_leaf_position_size_or_node() -> None:
    for size in range(1, MAX_LEAVES + 1):
        root = ref_mth(LEAVES[:size])
        for index in range(size):
            proof = ref_path(index, LEAVES[:size])
            leaf = LEAVES[index]
            other_leaf = LEAVES[(index + 1) % MAX_LEAVES]
            assert not verify_inclusion(other_leaf, index, size, proof, root)
            for wrong_index in {index - 1, index + 1, index ^ 2} - {index}:
                assert not verify_inclusion(leaf, wrong_index, size, proof, root), (index, size)
            for wrong_size in {size * 2, size // 2} - {size}:
                assert not verify_inclusion(leaf, index, wrong_size, proof, root), (index, size)
            for i in range(len(proof)):
                assert not verify_inclusion(leaf, index, size, flipped(proof, i), root)
            assert not verify_inclusion(leaf, index, size, proof + [root], root)
            assert not verify_inclusion(leaf, index, size, [root] + proof, root)
            if proof:
                assert not verify_inclusion(leaf, index, size, proof[:-1], root)


def test_every_consistency_proof_up_to_twenty_leaves_is_rfc_exact_and_verifies() -> None:
    log = MerkleLog(LEAVES)
    for new in range(0, MAX_LEAVES + 1):
        new_root = ref_mth(LEAVES[:new])
        for old in range(0, new + 1):
            old_root = ref_mth(LEAVES[:old])
            expected = ref_consistency(old, LEAVES[:new])
            assert consistency_proof(LEAVES, old, new) == expected, (old, new)
            assert log.consistency_proof(old, new) == expected, (old, new)
            assert verify_consistency(old, new, old_root, new_root, expected), (old, new)


def test_consistency_proof_is_refused_for_a_rewritten_history_or_tampered_node() -> None:
    rewritten = LEAVES[:3] + [b"\xff" * 32] + LEAVES[4:]
    for new in range(2, MAX_LEAVES + 1):
        new_root = ref_mth(LEAVES[:new])
        for old in range(1, new):
            old_root = ref_mth(LEAVES[:old])
            proof = ref_consistency(old, LEAVES[:new])
            for i in range(len(proof)):
                assert not verify_consistency(old, new, old_root, new_root, flipped(proof, i))
            assert not verify_consistency(old, new, new_root, old_root, proof)
            assert not verify_consistency(old, new, old_root, new_root, [])
            assert not verify_consistency(old, new, old_root, new_root, proof + [old_root])
            assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
            for wrong_old in {old - 1, old + 1} - {0, new}:
                assert not verify_consistency(wrong_old, new, old_root, new_root, proof)
            if old > 3:
                # The old checkpoint saw event 4 different: no proof can link the two.
                forged_old_root = ref_mth(rewritten[:old])
                assert not verify_consistency(old, new, forged_old_root, new_root, proof)


def test_consistency_edges_need_an_empty_proof_and_matching_roots() -> None:
    root = ref_mth(LEAVES[:5])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 5, root, root, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, EMPTY_ROOT, [])
    assert not verify_consistency(6, 5, root, root, [])


# --- streaming, caching and errors ----------------------------------------------------------------


def test_accumulator_resumed_from_a_saved_frontier_gives_the_same_root() -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(45)]
    first = MerkleAccumulator().extend(leaves[:29])
    resumed = MerkleAccumulator.from_frontier(first.size, first.frontier)
    resumed.extend(leaves[29:])
    assert (resumed.size, resumed.root()) == tree_head(leaves)
    assert len(first.frontier) == bin(29).count("1")


def test_a_frontier_that_cannot_belong_to_its_size_is_refused() -> None:
    with pytest.raises(MerkleError, match="must hold 2 subtree hashes"):
        MerkleAccumulator.from_frontier(3, [EMPTY_ROOT])


def test_tree_head_reads_leaves_from_a_generator_once() -> None:
    consumed = []

    def events() -> object:
        for i in range(1000):
            consumed.append(i)
            yield hashlib.sha256(str(i).encode()).digest()

    size, root = tree_head(events())  # type: ignore[arg-type]
    assert size == 1000 and consumed == list(range(1000))
    assert root == MerkleLog([hashlib.sha256(str(i).encode()).digest() for i in range(1000)]).root()


def test_leaf_hash_prefixes_zero_byte_so_leaves_cannot_pose_as_nodes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert tree_head([b"x" * 64])[1] != hashlib.sha256(b"\x01" + b"x" * 64).digest()


def test_proof_for_a_leaf_outside_the_tree_is_refused_with_a_clear_message() -> None:
    with pytest.raises(MerkleError, match="leaf index 5 is not in a tree of 5 leaves"):
        inclusion_proof(LEAVES, 5, 5)
    with pytest.raises(MerkleError, match="outside the log, which has 20 leaves"):
        inclusion_proof(LEAVES, 0, 21)
    with pytest.raises(MerkleError, match="between 0 and the new size 4"):
        consistency_proof(LEAVES, 5, 4)
    with pytest.raises(MerkleError, match="outside the log"):
        MerkleLog(LEAVES).root(21)


def test_verifiers_answer_false_for_malformed_input_instead_of_raising() -> None:
    root = ref_mth(LEAVES[:4])
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(LEAVES[0], -1, 4, [], root)
    assert not verify_inclusion(LEAVES[0], 0, 4, [b"short"], root)
    assert not verify_inclusion(LEAVES[0], 0, 1, [], b"short")
    assert not verify_consistency(-1, 4, EMPTY_ROOT, root, [])
    assert not verify_consistency(2, 4, b"short", root, [root])

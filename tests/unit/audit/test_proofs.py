"""Signed checkpoints, proof bundles and the standalone offline verifier (AUD-3)."""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from etmf.audit import proofcheck
from etmf.audit.checkpoint import (
    CheckpointError,
    CheckpointKeyError,
    LogDoesNotMatchCheckpoint,
    SignedTreeHead,
    attach_timestamp,
    check_log_against_tree_head,
    generate_signing_key,
    key_id,
    load_private_key,
    public_key_pem,
    save_private_key,
    sign_tree_head,
    timestamp_imprint,
    tree_head_message,
    verify_tree_head,
)
from etmf.audit.merkle import tree_head
from etmf.audit.proofcheck import check_bundle
from etmf.audit.proofs import BUNDLE_FORMAT, ProofError, build_proof_bundle

ISSUED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PROOFCHECK_FILE = Path(proofcheck.__file__)


def canonical_event(seq: int) -> str:
    """A stand-in for the event store's canonical encoding (any string works for the proofs)."""
    payload = {"seq": seq, "type": "DocumentFiled", "actor": "Dr. Émilie Durand", "note": "ü€"}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


EVENTS = [canonical_event(seq) for seq in range(1, 14)]
EVENT_HASHES = [hashlib.sha256(e.encode("utf-8")).hexdigest() for e in EVENTS]
LEAVES = [bytes.fromhex(h) for h in EVENT_HASHES]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def sth(key: Ed25519PrivateKey) -> SignedTreeHead:
    size, root = tree_head(LEAVES[:11])  # the log grew to 13 events after this checkpoint
    return sign_tree_head(key, size, root, ISSUED_AT)


def make_bundle(key: Ed25519PrivateKey, sth: SignedTreeHead, index: int) -> dict[str, Any]:
    return build_proof_bundle(
        EVENTS[index], EVENT_HASHES[index], index, LEAVES, sth, public_key_pem(key)
    )


def failed_checks(bundle: dict[str, Any]) -> list[str]:
    return [name for name, passed, _ in check_bundle(bundle) if not passed]


def flip_hex(text: str, byte: int) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[byte] ^= 0x01
    return raw.hex()


def flip_base64(text: str, byte: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --- signed tree heads --------------------------------------------------------------------------


def test_signed_message_is_the_documented_version_one_text() -> None:
    root = "ab" * 32
    assert tree_head_message(7, root, "2024-05-01T12:00:00Z") == (
        b"etmf-audit-checkpoint-v1\n7\n" + root.encode() + b"\n2024-05-01T12:00:00Z\n"
    )


def test_tree_head_signed_by_the_server_key_verifies(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    assert sth.tree_size == 11
    assert sth.root_hash == tree_head(LEAVES[:11])[1].hex()
    assert sth.issued_at == "2024-05-01T12:00:00Z"
    assert sth.key_id == hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()
    assert verify_tree_head(sth, public_key_pem(key))


@pytest.mark.req("AUD-3")
def test_tree_head_with_any_field_changed_or_another_key_does_not_verify(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    pem = public_key_pem(key)
    forgeries = [
        SignedTreeHead(10, sth.root_hash, sth.issued_at, sth.key_id, sth.signature),
        SignedTreeHead(11, flip_hex(sth.root_hash, 31), sth.issued_at, sth.key_id, sth.signature),
        SignedTreeHead(11, sth.root_hash, "2024-05-01T12:00:01Z", sth.key_id, sth.signature),
        SignedTreeHead(11, sth.root_hash, sth.issued_at, "00" * 32, sth.signature),
        SignedTreeHead(11, sth.root_hash, sth.issued_at, sth.key_id, flip_base64(sth.signature, 5)),
        SignedTreeHead(11, sth.root_hash, sth.issued_at, sth.key_id, "not base64!"),
    ]
    for forged in forgeries:
        assert not verify_tree_head(forged, pem), forged
    assert not verify_tree_head(sth, public_key_pem(generate_signing_key()))


def test_tree_head_json_is_canonical_and_round_trips(sth: SignedTreeHead) -> None:
    text = sth.to_json()
    assert " " not in text and text.startswith('{"issued_at":')
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert SignedTreeHead.from_json(text) == sth


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tree_size": "11"}, "tree_size must be a non-negative integer"),
        ({"tree_size": True}, "tree_size must be a non-negative integer"),
        ({"root_hash": "AB" * 32}, "root_hash must be 64 lowercase hex"),
        ({"issued_at": "2024-05-01 12:00"}, "not UTC with a 'Z'"),
        ({"extra": 1}, "unexpected \\['extra'\\]"),
    ],
)
def test_malformed_checkpoint_json_is_refused_with_the_field_named(
    sth: SignedTreeHead, change: dict[str, Any], message: str
) -> None:
    data = {**json.loads(sth.to_json()), **change}
    with pytest.raises(CheckpointError, match=message):
        SignedTreeHead.from_json(json.dumps(data))


def test_checkpoint_time_is_stored_in_utc_and_a_naive_time_is_refused(
    key: Ed25519PrivateKey,
) -> None:
    paris = timezone(timedelta(hours=2))
    local = sign_tree_head(
        key, 0, hashlib.sha256(b"").digest(), datetime(2024, 5, 1, 14, 0, tzinfo=paris)
    )
    assert local.issued_at == "2024-05-01T12:00:00Z"
    fine = sign_tree_head(key, 0, bytes(32), datetime(2024, 5, 1, 12, 0, 0, 250, tzinfo=UTC))
    assert fine.issued_at == "2024-05-01T12:00:00.000250Z"
    with pytest.raises(CheckpointError, match="must carry a time zone"):
        sign_tree_head(key, 0, bytes(32), datetime(2024, 5, 1, 12, 0))


def test_attached_timestamp_is_kept_and_leaves_the_signature_valid(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    stamped = attach_timestamp(sth, b"\x30\x03\x02\x01\x00")
    assert base64.b64decode(stamped.timestamp_token or "") == b"\x30\x03\x02\x01\x00"
    assert SignedTreeHead.from_json(stamped.to_json()) == stamped
    assert verify_tree_head(stamped, public_key_pem(key))
    assert timestamp_imprint(stamped) == hashlib.sha256(base64.b64decode(sth.signature)).digest()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_verifies_a_checkpoint_as_the_module_docstring_says(
    key: Ed25519PrivateKey, sth: SignedTreeHead, tmp_path: Path
) -> None:
    (tmp_path / "pub.pem").write_text(public_key_pem(key))
    (tmp_path / "msg").write_bytes(tree_head_message(sth.tree_size, sth.root_hash, sth.issued_at))
    (tmp_path / "sig").write_bytes(base64.b64decode(sth.signature))
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin"]
    result = subprocess.run(
        [*command, "-in", "msg", "-sigfile", "sig"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout


# --- key files ----------------------------------------------------------------------------------


def test_key_saved_with_passphrase_is_encrypted_owner_only_and_loads_back(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "checkpoint.key"
    save_private_key(key, path, b"correct horse")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_private_key(path, b"correct horse")
    assert key_id(loaded.public_key()) == key_id(key.public_key())
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_key_with_wrong_or_missing_passphrase_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.key"
    save_private_key(generate_signing_key(), path, b"correct horse")
    with pytest.raises(CheckpointKeyError, match="wrong passphrase"):
        load_private_key(path, b"battery staple")
    with pytest.raises(CheckpointKeyError, match="encrypted: a passphrase is needed"):
        load_private_key(path, None)


def test_unencrypted_key_round_trips_and_is_still_owner_only(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "checkpoint.key"
    save_private_key(key, path, None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public_key_pem(load_private_key(path, None)) == public_key_pem(key)
    with pytest.raises(CheckpointKeyError, match="not encrypted, but a passphrase was given"):
        load_private_key(path, b"x")


def test_existing_key_is_not_replaced_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.key"
    first, second = generate_signing_key(), generate_signing_key()
    save_private_key(first, path, None)
    with pytest.raises(CheckpointKeyError, match="already exists"):
        save_private_key(second, path, None)
    assert public_key_pem(load_private_key(path, None)) == public_key_pem(first)
    save_private_key(second, path, None, overwrite=True)
    assert public_key_pem(load_private_key(path, None)) == public_key_pem(second)


# --- truncation against a checkpoint ------------------------------------------------------------


@pytest.mark.req("AUD-3")
def test_deleting_the_newest_events_is_detected_against_the_checkpoint(
    sth: SignedTreeHead,
) -> None:
    check_log_against_tree_head(iter(LEAVES), sth)  # the log grew: still consistent
    with pytest.raises(LogDoesNotMatchCheckpoint, match="only 9 events.*signed 11"):
        check_log_against_tree_head(iter(LEAVES[:9]), sth)


@pytest.mark.req("AUD-3")
def test_a_rewritten_event_before_the_checkpoint_is_detected(sth: SignedTreeHead) -> None:
    rewritten = LEAVES[:4] + [hashlib.sha256(b"forged").digest()] + LEAVES[5:]
    with pytest.raises(LogDoesNotMatchCheckpoint, match="first 11 audit events do not hash"):
        check_log_against_tree_head(rewritten, sth)


# --- proof bundles ------------------------------------------------------------------------------


@pytest.mark.req("AUD-3")
def test_bundle_for_every_event_in_the_checkpoint_verifies_offline(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    for index in range(sth.tree_size):
        bundle = json.loads(json.dumps(make_bundle(key, sth, index)))  # as written to a file
        results = check_bundle(bundle, expected_key_id=sth.key_id)
        assert [name for name, _, _ in results] == [
            "bundle format",
            "event hash",
            "inclusion proof",
            "tree head signature",
            "signing key",
        ]
        assert all(passed for _, passed, _ in results), results


def _replaced(bundle: dict[str, Any], where: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``bundle`` with the value at the key path ``where`` replaced."""
    tampered = copy.deepcopy(bundle)
    parent = tampered
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    return tampered


def _tampered_bundles(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Single-value changes an attacker could make to a bundle, each in its own copy."""
    head = bundle["tree_head"]
    path = bundle["inclusion_path"]
    canonical = bundle["event_canonical"]
    cases: list[tuple[str, tuple[str, ...], Any]] = []
    for pos in sorted({0, 1, len(canonical) // 3, len(canonical) // 2, len(canonical) - 1}):
        changed = canonical[:pos] + ("X" if canonical[pos] != "X" else "Y") + canonical[pos + 1 :]
        cases.append((f"event_canonical[{pos}]", ("event_canonical",), changed))
    for byte in (0, 13, 31):
        cases.append(
            (f"event_hash byte {byte}", ("event_hash",), flip_hex(bundle["event_hash"], byte))
        )
        cases.append(
            (f"root byte {byte}", ("tree_head", "root_hash"), flip_hex(head["root_hash"], byte))
        )
    for i in range(len(path)):
        for byte in (0, 31):
            node = [*path[:i], flip_hex(path[i], byte), *path[i + 1 :]]
            cases.append((f"inclusion_path[{i}] byte {byte}", ("inclusion_path",), node))
    for delta in (-1, 1, 5):
        cases.append(
            (f"tree size {delta:+}", ("tree_head", "tree_size"), head["tree_size"] + delta)
        )
    for byte in (0, 31, 32, 63):
        signature = flip_base64(head["signature"], byte)
        cases.append((f"signature byte {byte}", ("tree_head", "signature"), signature))
    cases += [
        ("index + 1", ("index",), bundle["index"] + 1),
        ("issued_at", ("tree_head", "issued_at"), "2024-05-01T12:00:01Z"),
        ("dropped path node", ("inclusion_path",), path[:-1]),
        ("other key", ("public_key_pem",), public_key_pem(generate_signing_key())),
    ]
    return [(label, _replaced(bundle, where, value)) for label, where, value in cases]


@pytest.mark.req("AUD-3")
def test_bundle_with_any_single_value_changed_fails_verification(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    for index in (0, 6, 10):
        bundle = make_bundle(key, sth, index)
        assert failed_checks(bundle) == []
        for label, tampered in _tampered_bundles(bundle):
            assert failed_checks(tampered), f"event {index + 1}: {label} was not detected"


@pytest.mark.req("AUD-3")
def test_bundle_signed_by_an_unexpected_key_is_refused_when_the_key_is_pinned(
    sth: SignedTreeHead,
) -> None:
    impostor = generate_signing_key()
    forged_sth = sign_tree_head(impostor, sth.tree_size, sth.root_hash_bytes, ISSUED_AT)
    bundle = build_proof_bundle(
        EVENTS[2], EVENT_HASHES[2], 2, LEAVES, forged_sth, public_key_pem(impostor)
    )
    results = {name: passed for name, passed, _ in check_bundle(bundle, sth.key_id)}
    assert results == {
        "bundle format": True,
        "event hash": True,
        "inclusion proof": True,
        "tree head signature": True,
        "signing key": False,
    }


def test_malformed_bundle_gets_reasons_not_a_crash() -> None:
    results = check_bundle({"format": BUNDLE_FORMAT, "tree_head": [], "index": "3"})
    assert [passed for _, passed, _ in results] == [False, False, False, False]
    assert "field 'event_canonical' is missing" in results[0][2]


def test_server_refuses_to_build_a_bundle_that_would_not_verify(
    key: Ed25519PrivateKey, sth: SignedTreeHead
) -> None:
    pem = public_key_pem(key)
    with pytest.raises(ProofError, match="event 12 is not covered by the checkpoint"):
        build_proof_bundle(EVENTS[11], EVENT_HASHES[11], 11, LEAVES, sth, pem)
    with pytest.raises(ProofError, match="event 3 does not match its stored hash"):
        build_proof_bundle(EVENTS[2] + " ", EVENT_HASHES[2], 2, LEAVES, sth, pem)
    with pytest.raises(ProofError, match="log was truncated"):
        build_proof_bundle(EVENTS[2], EVENT_HASHES[2], 2, LEAVES[:10], sth, pem)
    rewritten = LEAVES[:7] + [bytes(32)] + LEAVES[8:]
    with pytest.raises(ProofError, match="the log changed after the checkpoint"):
        build_proof_bundle(EVENTS[2], EVENT_HASHES[2], 2, rewritten, sth, pem)
    with pytest.raises(ProofError, match="not signed by the given key"):
        build_proof_bundle(
            EVENTS[2], EVENT_HASHES[2], 2, LEAVES, sth, public_key_pem(generate_signing_key())
        )


# --- the command line and the verifier's independence -------------------------------------------


def run_checker(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.req("AUD-3")
def test_command_line_reports_each_check_and_exits_zero_for_a_good_bundle(
    key: Ed25519PrivateKey, sth: SignedTreeHead, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(make_bundle(key, sth, 4)), encoding="utf-8")
    result = run_checker(
        ["-m", "etmf.audit.proofcheck", str(path), "--key-id", sth.key_id], tmp_path
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(" (")[0] for line in lines] == [
        "bundle format: OK",
        "event hash: OK",
        "inclusion proof: OK",
        "tree head signature: OK",
        "signing key: OK",
        "result: VERIFIED",
    ]


@pytest.mark.req("AUD-3")
def test_standalone_copy_of_the_checker_fails_a_tampered_bundle_with_exit_one(
    key: Ed25519PrivateKey, sth: SignedTreeHead, tmp_path: Path
) -> None:
    # The inspector's situation: one file, copied out of the project, run in isolated mode.
    shutil.copy(PROOFCHECK_FILE, tmp_path / "proofcheck.py")
    bundle = make_bundle(key, sth, 4)
    bundle["event_canonical"] = bundle["event_canonical"].replace("DocumentFiled", "DocumentFilEd")
    (tmp_path / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    result = run_checker(["-I", "proofcheck.py", "bundle.json"], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "event hash: FAILED" in result.stdout
    assert "inclusion proof: OK" in result.stdout
    assert result.stdout.splitlines()[-1] == "result: NOT VERIFIED"


def test_command_line_exits_two_for_an_unreadable_bundle(tmp_path: Path) -> None:
    shutil.copy(PROOFCHECK_FILE, tmp_path / "proofcheck.py")
    (tmp_path / "bundle.json").write_text("{not json", encoding="utf-8")
    result = run_checker(["-I", "proofcheck.py", "bundle.json"], tmp_path)
    assert result.returncode == 2
    assert "cannot read the proof bundle" in result.stderr


def test_checker_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(PROOFCHECK_FILE.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - {"cryptography"}
    assert outside == set()


def test_checker_and_server_agree_on_the_bundle_format_version() -> None:
    assert proofcheck.BUNDLE_FORMAT == BUNDLE_FORMAT

"""The system's own keys: the audit checkpoint key (Ed25519), created at `etmf init`.

The signing CA of etmf.signing lives beside it in the same folder.
"""

from __future__ import annotations

from pathlib import Path

from etmf.settings import Settings


def system_key_paths(settings: Settings) -> list[Path]:
    return [settings.keys_path / "audit-checkpoint.pem"]


def ensure_system_keys(settings: Settings) -> list[Path]:
    """Create the keys that do not exist yet; returns the paths created."""
    from etmf.audit.checkpoint import generate_signing_key, save_private_key

    settings.keys_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = []
    checkpoint_key = settings.keys_path / "audit-checkpoint.pem"
    if not checkpoint_key.exists():
        save_private_key(generate_signing_key(), checkpoint_key,
                         settings.secret_key.encode("utf-8"))
        created.append(checkpoint_key)
    return created

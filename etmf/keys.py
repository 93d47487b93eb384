"""The system's own keys, created at `etmf init`: the audit checkpoint key (Ed25519), the
signing certificate authority that issues each user's signing certificate (etmf.signing), and
the randomization key (a Fernet key that seals randomization seeds in the audit trail, so that
reading the trail does not reveal a concealed allocation list).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from etmf.settings import Settings

#: File name of the randomization key in the keys folder.
RANDOMIZATION_KEY = "randomization.key"


def system_key_paths(settings: Settings) -> list[Path]:
    paths = [settings.keys_path / "audit-checkpoint.pem", settings.keys_path / RANDOMIZATION_KEY]
    if not settings.testing:
        paths += [settings.signing_ca_path / "ca.key.pem", settings.signing_ca_path / "ca.cert.pem"]
    return paths


def ensure_system_keys(settings: Settings, now: datetime | None = None) -> list[Path]:
    """Create the keys that do not exist yet; returns the paths created.

    The signing CA is created here too, except in testing mode: there it is created on
    first use with the app's (frozen) clock, so that its validity starts before the test's
    signing time and tests that never sign do not pay for an RSA-3072 key.
    """
    from etmf.audit.checkpoint import generate_signing_key, save_private_key

    settings.keys_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = []
    checkpoint_key = settings.keys_path / "audit-checkpoint.pem"
    if not checkpoint_key.exists():
        save_private_key(generate_signing_key(), checkpoint_key,
                         settings.secret_key.encode("utf-8"))
        created.append(checkpoint_key)
    if ensure_secret_key_file(settings.keys_path / RANDOMIZATION_KEY):
        created.append(settings.keys_path / RANDOMIZATION_KEY)
    if not settings.testing:
        from etmf.clock import SystemClock
        from etmf.signing.pki import ensure_ca

        if ensure_ca(settings, now or SystemClock().now()):
            created.append(settings.signing_ca_path / "ca.cert.pem")
    return created


def ensure_secret_key_file(path: Path) -> bool:
    """Create a Fernet key file (readable by the owner only) unless it exists; True if made."""
    import os

    from cryptography.fernet import Fernet

    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key())
    return True

"""Sealing the randomization seed, so that the audit trail does not reveal the list.

The seed goes into the ``randomization.list_generated`` event encrypted (Fernet: AES-128-CBC
with HMAC-SHA256) under the instance's randomization key (``<keys>/randomization.key``,
created by :func:`etmf.keys.ensure_system_keys`). Anyone with audit-trail access sees only the
token; the projection, which runs inside the server, unseals it and rebuilds the list, so
replaying the log (``etmf audit verify``) still rebuilds exactly the same slots.

The key is the current app's (an app context: web requests, ``etmf`` commands, jobs). Code
running without one (tests, scripts holding an app) uses the instance whose key was loaded
last in this process; unsealing tries every key the process has loaded.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from etmf.keys import RANDOMIZATION_KEY, ensure_secret_key_file
from etmf.settings import Settings

#: Keys loaded by this process, by file, in the order loaded (the newest last).
_LOADED: dict[Path, bytes] = {}


class KeyUnavailable(RuntimeError):
    """No randomization key: run ``etmf init`` (it creates the system keys)."""


def instance_key(settings: Settings) -> bytes:
    """The instance's randomization key (created if it does not exist yet)."""
    path = settings.keys_path / RANDOMIZATION_KEY
    if path not in _LOADED:
        ensure_secret_key_file(path)
        _LOADED[path] = path.read_bytes().strip()
    else:  # keep the most recently used instance last
        _LOADED[path] = _LOADED.pop(path)
    return _LOADED[path]


def _app_key() -> bytes | None:
    from flask import has_app_context

    if not has_app_context():
        return None
    from etmf.bootstrap import services

    return instance_key(services().settings)


def seal(seed: str) -> str:
    """The seed encrypted under the current instance's key (text, for an event payload)."""
    key = _app_key() or (list(_LOADED.values())[-1] if _LOADED else None)
    if key is None:
        raise KeyUnavailable("The randomization key is not loaded; run `etmf init`.")
    return Fernet(key).encrypt(seed.encode("utf-8")).decode("ascii")


def unseal(token: str) -> str:
    """The seed inside ``token``; :class:`KeyUnavailable` if no loaded key opens it."""
    keys = [k for k in [_app_key(), *reversed(list(_LOADED.values()))] if k]
    if not keys:
        raise KeyUnavailable("The randomization key is not loaded; run `etmf init`.")
    try:
        return MultiFernet([Fernet(k) for k in dict.fromkeys(keys)]).decrypt(
            token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise KeyUnavailable("The randomization seed was sealed with a key this instance does "
                             "not have (keys folder replaced?).") from None


def remember(settings: Settings) -> None:
    """Load the instance's key so that code without an app context can use it."""
    instance_key(settings)

"""Authenticator codes that work once.

A TOTP code stays valid for its 30-second step (and the window either side); without a
guard, a code seen over a shoulder or in a proxy log could be replayed within that time to
sign in or, worse, to sign. Flask-Security's ``Totp`` leaves the guard to the application
(``get_last_counter``/``set_last_counter``): the last step a user consumed is a column of the
user, set by projections of the events that consumed it (``user.login`` and
``user.totp_used``), so it is audited and survives a rebuild from the log. A code of that
step or an earlier one is refused.
"""

from __future__ import annotations

from typing import Any

from flask import g, has_app_context
from flask_security import Totp


class OnceOnlyTotp(Totp):
    def get_last_counter(self, user: Any) -> int | None:
        return getattr(user, "tf_totp_last_step", None)

    def set_last_counter(self, user: Any, tmatch: Any) -> None:
        # Recorded by whoever records the sign-in or the signature (see consumed_step).
        if has_app_context():
            g.etmf_totp_step = (getattr(user, "id", None), int(tmatch.counter))


def consumed_step(user_id: int) -> int | None:
    """The TOTP step this request's successful code check consumed for this user."""
    if not has_app_context():
        return None
    seen = g.get("etmf_totp_step")
    if seen is None or seen[0] != user_id:
        return None
    return int(seen[1])

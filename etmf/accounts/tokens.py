"""Who a bearer token belongs to (ACC-8). Refusals are 401 and never say which check failed."""

from __future__ import annotations

import hmac
import logging

from sqlalchemy import select

from etmf.accounts.models import ApiToken, User
from etmf.accounts.services import TOKEN_PREFIX, hash_token

log = logging.getLogger("etmf.security")


def user_for_token(token: str) -> User:
    from flask import current_app

    from etmf.accounts.authn import sign_in_refusal
    from etmf.api import Unauthorized
    from etmf.bootstrap import services

    refused = Unauthorized("The token is not valid: it is unknown, expired or revoked.")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise refused
    svc = services()
    digest = hash_token(token)
    session = current_app.extensions["etmf_fs_session"]  # Flask-Security's session
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash or "", digest):
        raise refused
    if not row.is_valid(svc.clock.now()):
        log.info("refused API token %s (expired or revoked)", row.prefix)
        raise refused
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise refused
    reason = sign_in_refusal(user)
    if reason:
        raise Unauthorized(reason)
    return user  # type: ignore[no-any-return]

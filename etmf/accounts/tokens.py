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
    # One session and one connection for every check of the call: Flask-Security's, which
    # then holds the user for the rest of the request (token and user in one statement).
    session = current_app.extensions["etmf_fs_session"]
    found = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)).first()
    if found is None:
        raise refused
    row, user = found
    if not hmac.compare_digest(row.token_hash or "", digest):
        raise refused
    if not row.is_valid(svc.clock.now()):
        log.info("refused API token %s (expired or revoked)", row.prefix)
        raise refused
    if not user.active:
        raise refused
    reason = sign_in_refusal(user, session)
    if reason:
        raise Unauthorized(reason)
    return user  # type: ignore[no-any-return]

"""Inspector accounts with grants, shared with the accounts tests."""

from tests.integration.accounts.conftest import make_inspector  # noqa: F401

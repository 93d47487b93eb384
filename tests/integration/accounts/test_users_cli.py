"""`etmf users`: the console way back in when every administrator is locked out."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from etmf.cli import main
from tests.integration.accounts.conftest import events_of, try_sign_in


@pytest.mark.req("ACC-5")
def test_operator_lists_locked_accounts_and_unlocks_one_with_a_reason(world, app, svc):
    admin = world.user("admin", email="only.admin@example.org")
    client = app.test_client()
    for _ in range(5):
        try_sign_in(client, admin.email, "wrong-password-77")
    env = {"ETMF_DATABASE_URL": svc.settings.database_url}
    instance = str(svc.settings.instance_path)
    runner = CliRunner()
    listed = runner.invoke(main, ["users", "list", "--locked", "--instance", instance], env=env)
    assert listed.exit_code == 0, listed.output
    assert "only.admin@example.org" in listed.output and "locked 2026-11-26" in listed.output
    assert listed.output.strip().endswith("1 account(s).")
    missing = runner.invoke(main, ["users", "unlock", "nobody@example.org", "--reason", "x",
                                   "--instance", instance], env=env)
    assert missing.exit_code != 0 and "There is no account nobody@example.org." in missing.output
    no_reason = runner.invoke(main, ["users", "unlock", admin.email, "--instance", instance],
                              env=env)
    assert no_reason.exit_code != 0 and "--reason" in no_reason.output
    done = runner.invoke(main, ["users", "unlock", admin.email, "--reason",
                                "identity checked in person", "--instance", instance], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "Unlocked only.admin@example.org."
    event = events_of(svc, "user", admin.id)[-1]
    assert (event.type, event.actor_name, event.reason) == (
        "user.unlocked", "etmf cli", "identity checked in person")
    assert try_sign_in(app.test_client(), admin.email).status_code == 302

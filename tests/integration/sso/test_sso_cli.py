"""`etmf sso check` lists providers and checks each against its discovery document."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from etmf.cli import main


@pytest.mark.req("FR-SSO-1")
def test_sso_check_reaches_the_provider(app, svc, idp):
    result = CliRunner().invoke(main, ["sso", "check", "--instance",
                                       str(svc.settings.instance_path)],
                                env={"ETMF_OIDC_PROVIDERS_FILE": str(idp.providers_file),
                                     "ETMF_DATABASE_URL": svc.settings.sqlalchemy_url})
    assert result.exit_code == 0, result.output
    assert "test" in result.output and "ok (1 key(s), sign-out yes)" in result.output
    assert result.output.strip().endswith("1 provider(s), 0 failed.")

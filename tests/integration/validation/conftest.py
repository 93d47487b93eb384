"""An initialised instance (on the suite's database backend) to validate, and a runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from etmf.cli import main

ADMIN = ["--admin-email", "qa@example.org", "--admin-name", "Vera Validator",
         "--admin-password", "Tr1al-Master-File-Admin"]
SECRET = "validation-secret-key-that-must-never-appear"


@pytest.fixture
def instance_env(tmp_path: Path, database_url: str) -> dict[str, str | None]:
    """Environment of an `etmf init`-ed instance whose database is the test's own."""
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("ETMF_") and k != "ETMF_TEST_DATABASE_URL"}
    env |= {"ETMF_INSTANCE_PATH": str(tmp_path / "instance"), "ETMF_DATABASE_URL": database_url,
            "ETMF_SECRET_KEY": SECRET}
    result = CliRunner().invoke(main, ["init", *ADMIN], env=env)
    assert result.exit_code == 0, result.output
    return env


@pytest.fixture
def validate(instance_env: dict[str, str | None]) -> Callable[..., Result]:
    def _validate(*args: str) -> Result:
        return CliRunner().invoke(main, ["validate", *args], env=instance_env)

    return _validate

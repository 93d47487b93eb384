"""Session-wide signing fixtures: one CA, a few enrolled users, sample PDFs, a TSA."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest

from etmf.signing.pades import PadesSigner

from .helpers import T0, Pki, Tsa, make_nss_db, make_pdf, make_pki, manifestation, running_tsa


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def jane(pki: Pki) -> PadesSigner:
    return pki.enrol("jane", "Dr Jane Smith", "jane.smith@example.org")


@pytest.fixture(scope="session")
def bob(pki: Pki) -> PadesSigner:
    return pki.enrol("bob", "Bob Reviewer", "bob.reviewer@example.org")


@pytest.fixture(scope="session")
def one_page_pdf() -> bytes:
    return make_pdf(1)


@pytest.fixture(scope="session")
def multi_page_pdf() -> bytes:
    return make_pdf(5)


@pytest.fixture(scope="session")
def signed_once(jane: PadesSigner, one_page_pdf: bytes) -> bytes:
    """The one-page PDF approved by Dr Jane Smith (PAdES B-B)."""
    return jane.sign(BytesIO(one_page_pdf), manifestation())


@pytest.fixture(scope="session")
def nss_db(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Path:
    return make_nss_db(tmp_path_factory.mktemp("nss"), pki.ca.certificate)


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    # The TSA stamps one second after the signing time: deterministic, and after it.
    with running_tsa(tmp_path_factory.mktemp("tsa"), at=T0 + timedelta(seconds=1)) as service:
        yield service

"""Helpers for the document tests: files, a signed-in client, and the background indexing
closed at the end of each test (no thread outlives its app)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from werkzeug.datastructures import FileStorage

from tests.conftest import csrf_from, make_pdf


@pytest.fixture(autouse=True)
def _close_indexing(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    yield
    from etmf.bootstrap import services
    from etmf.documents import indexing

    indexing.shutdown(services(app))


def pdf(title: str, body: str = "Body text of the test document.") -> bytes:
    return make_pdf(title, body)


def upload(client, study_id: int, files: list[tuple[bytes, str]]):  # type: ignore[no-untyped-def]
    """Step 1 of filing through the web form: returns the response of the upload."""
    token = csrf_from(client.get(f"/studies/{study_id}/file").get_data(as_text=True))
    return post_multipart(client, f"/studies/{study_id}/file",
                          {"csrf_token": token,
                           "files": [(io.BytesIO(c), name) for c, name in files]})


def post_multipart(client, path: str, fields: dict[str, object]):  # type: ignore[no-untyped-def]
    """POST multipart/form-data encoded in memory: Werkzeug's test client spools bodies
    over 500 KB to a temporary file it never closes (a ResourceWarning in a later test)."""
    from werkzeug.datastructures import MultiDict
    from werkzeug.test import encode_multipart

    items = MultiDict()
    for key, value in fields.items():
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, tuple):
                items.add(key, FileStorage(item[0], filename=item[1]))
            else:
                items.add(key, item)
    boundary, body = encode_multipart(items)
    return client.post(path, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def rows_of(html: str) -> dict[str, str]:
    """The hidden and prefilled fields of the metadata rows form."""
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="(rows-\d+-\w+)"[^>]*value="([^"]*)"',
                                  html):
        if not name.endswith("-skip"):
            fields[name] = value
    for name, value in re.findall(r'name="(row_count)" value="([^"]*)"', html):
        fields[name] = value
    return fields


def file_rows(client, study_id: int, html: str, rows: list[dict[str, str]],  # type: ignore[no-untyped-def]
              send_to_qc: bool = False, csrf: str | None = None):
    """Step 2: fill each row with ``rows[i]`` and post the form."""
    import html as html_lib

    data = {k: html_lib.unescape(v) for k, v in rows_of(html).items()}
    data["csrf_token"] = csrf or csrf_from(html)
    for i, values in enumerate(rows):
        for key, value in values.items():
            data[f"rows-{i}-{key}"] = value
    if send_to_qc:
        data["send_to_qc"] = "1"
    return client.post(f"/studies/{study_id}/file/commit", data=data)

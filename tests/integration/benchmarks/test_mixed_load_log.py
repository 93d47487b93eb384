"""benchmarks/mixed_load.py reads each kind of request's time from `etmf serve`'s access log:
lines in the server's own format (made by gunicorn's logger) come back counted by kind."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger

from etmf.cli import ACCESS_LOG_FORMAT

ROOT = Path(__file__).resolve().parents[3]


def _mixed_load():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("mixed_load_under_test",
                                                      ROOT / "benchmarks" / "mixed_load.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
        sys.modules.pop("mixed_load_under_test", None)


def _line(logger: Logger, method: str, uri: str, ms: int) -> str:
    environ = {"REQUEST_METHOD": method, "RAW_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": uri.split("?")[0]}
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ,
                         timedelta(milliseconds=ms))
    return ACCESS_LOG_FORMAT % atoms


def test_server_times_by_kind_from_the_serve_access_log(tmp_path):  # type: ignore[no-untyped-def]
    mixed = _mixed_load()
    cfg = Config()
    cfg.set("access_log_format", ACCESS_LOG_FORMAT)
    logger = Logger(cfg)
    log = tmp_path / "serve.log"
    earlier = "[INFO] Booting worker with pid: 7\n" + _line(logger, "GET", "/search?q=x", 9000)
    lines = [_line(logger, "GET", f"/search?study=1&q=w{i}", ms)
             for i, ms in enumerate([40, 10, 30, 20, 900])]
    lines += [_line(logger, "POST", "/api/v1/studies/1/documents", 120),
              _line(logger, "GET", "/documents/7/versions/2/download", 3),
              _line(logger, "GET", "/documents/7", 8),
              _line(logger, "GET", "/studies/1/documents?zone=03", 12),
              _line(logger, "GET", "/studies/1", 11),
              _line(logger, "GET", "/healthz", 1)]
    log.write_text(earlier + "\n")
    start = log.stat().st_size
    with open(log, "a") as f:
        f.write("\n".join(lines) + "\n")
    found = mixed.server_times(log, start)
    assert found["search"] == {"n": 5, "p50_ms": 30.0, "p99_ms": 900.0, "max_ms": 900.0}
    assert {k: v["n"] for k, v in found.items()} == {
        "search": 5, "file": 1, "download": 1, "document": 1, "tree": 2, "other": 1}
    assert found["file"]["max_ms"] == 120.0 and found["tree"]["p50_ms"] == 12.0

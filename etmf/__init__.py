"""eTMF and Part 11 e-signature server.

``create_app`` reads like a table of contents: each step is one small function.
"""

from __future__ import annotations

from flask import Flask

from etmf.settings import Settings

__version__ = "0.1.0"


def create_app(settings: Settings | None = None) -> Flask:
    from etmf import bootstrap

    settings = bootstrap.configure_settings(settings)
    app = bootstrap.make_flask(settings)
    bootstrap.init_logging(app, settings)
    services = bootstrap.init_services(app, settings)
    bootstrap.init_security(app, services)
    bootstrap.init_request_context(app)
    bootstrap.init_jobs(app)
    bootstrap.register_blueprints(app)
    bootstrap.register_error_handlers(app)
    bootstrap.register_cli(app)
    return app

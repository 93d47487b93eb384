"""The `etmf` command line: a first-class interface, each command tested with the runner."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask

from etmf.errors import EtmfError, SettingsError

log = logging.getLogger("etmf.serve")


def _app(instance: str | None = None, **overrides: object) -> Flask:
    from etmf import create_app
    from etmf.settings import load_settings

    if instance:
        overrides["instance_path"] = instance
    try:
        return create_app(load_settings(overrides=overrides))
    except SettingsError as exc:
        raise click.ClickException(exc.message) from None


@contextmanager
def app_context(instance: str | None = None, **overrides: object) -> Iterator[Flask]:
    from etmf.bootstrap import shutdown

    app = _app(instance, **overrides)
    with app.app_context():
        try:
            yield app
        except EtmfError as exc:
            raise click.ClickException(exc.message) from None
        finally:
            shutdown(app)


instance_option = click.option(
    "--instance", type=click.Path(file_okay=False), default=None,
    help="Instance folder (default: $ETMF_INSTANCE_PATH or ./instance).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="etmf")
def main() -> None:
    """eTMF and Part 11 e-signature server."""


# ---- database ---------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@instance_option
def db_upgrade(instance: str | None) -> None:
    """Apply every pending migration."""
    from etmf.bootstrap import services
    from etmf.migrate import current_revision, upgrade

    with app_context(instance) as app:
        engine = services(app).db.engine
        upgrade(engine)
        click.echo(f"Database at revision {current_revision(engine)}.")


@db.command("grant-app-role")
@instance_option
@click.argument("role")
@click.option("--password", default=None, help="Set the role's password too.")
def db_grant_app_role(instance: str | None, role: str, password: str | None) -> None:
    """Create or update the PostgreSQL ROLE the server runs as: INSERT and SELECT only on
    the audit log, read and write on the other tables."""
    from etmf.bootstrap import services
    from etmf.dbroles import grant_app_role

    with app_context(instance) as app:
        grant_app_role(services(app).db.engine, role, password=password)
    click.echo(f"Role {role} may insert and read audit events, never change or delete them.")


# ---- init ---------------------------------------------------------------------------------


@main.command()
@instance_option
@click.option("--admin-email", envvar="ETMF_ADMIN_EMAIL", help="First administrator's e-mail.")
@click.option("--admin-name", envvar="ETMF_ADMIN_NAME", help="First administrator's full name.")
@click.option("--admin-password", envvar="ETMF_ADMIN_PASSWORD",
              help="First administrator's password (prompted if not given).")
def init(instance: str | None, admin_email: str | None, admin_name: str | None,
         admin_password: str | None) -> None:
    """Create the schema, the system keys and the first administrator."""
    from etmf.bootstrap import services
    from etmf.keys import ensure_system_keys
    from etmf.migrate import upgrade

    with app_context(instance) as app:
        svc = services(app)
        upgrade(svc.db.engine)
        for path in ensure_system_keys(svc.settings):
            click.echo(f"Created key {path}")
        if not _has_admin(svc):
            admin_email = admin_email or click.prompt("Administrator e-mail")
            admin_name = admin_name or click.prompt("Administrator full name")
            admin_password = admin_password or click.prompt(
                "Administrator password", hide_input=True, confirmation_prompt=True)
            _create_admin(app, admin_email, admin_name, admin_password)
            click.echo(f"Created administrator {admin_email}.")
        click.echo(f"Instance ready in {svc.settings.instance_path}.")


def _has_admin(svc) -> bool:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from etmf.accounts.models import GlobalRole, User

    with svc.db.read_session() as session:
        return session.scalar(
            select(User.id).join(User.roles).where(GlobalRole.name == "admin").limit(1)
        ) is not None


def _create_admin(app: Flask, email: str, name: str, password: str) -> None:
    from etmf.accounts.security import password_policy_problems
    from etmf.accounts.services import NewUser, create_user
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services

    with app.test_request_context():
        problems = password_policy_problems(password)
    if problems:
        raise click.ClickException("The password is not acceptable: " + " ".join(problems))
    svc = services(app)
    with unit_of_work(svc.db, svc.clock, Actor.system("etmf init")) as uow:
        create_user(uow, NewUser(email=email, full_name=name, password=password,
                                 global_roles=("admin",)))
        uow.commit()


# ---- serve --------------------------------------------------------------------------------


@main.command()
@instance_option
@click.option("--bind", default="127.0.0.1:5000", show_default=True, help="Address:port.")
@click.option("--workers", default=2, show_default=True, type=int, help="Gunicorn workers.")
@click.option("--threads", default=2, show_default=True, type=int,
              help="Threads per worker. More add GIL contention, not throughput, once the "
                   "cores are busy (benchmarks/RESULTS.md); behind nginx, which buffers "
                   "uploads and answers, slow clients hold no thread.")
def serve(instance: str | None, bind: str, workers: int, threads: int) -> None:
    """Run the server under gunicorn (a production WSGI server)."""
    run_gunicorn(instance, bind, workers, threads)


def _after_fork(app: Flask) -> None:
    """In each new worker: drop the pool inherited from the master without closing its
    sockets (a worker must not share them; none are open today), and load the search
    index's caches in the background so the first search is not the one that waits."""
    svc = app.extensions["etmf"]
    svc.db.engine.dispose(close=False)

    def warm() -> None:
        started = time.perf_counter()
        try:
            svc.search.warm()
        except Exception:  # the first search will try again and report what is wrong
            log.warning("warming the search index failed", exc_info=True)
            return
        log.info("search index warm in %.1f s", time.perf_counter() - started)

    threading.Thread(target=warm, name="etmf-search-warm", daemon=True).start()


#: Container allocations between two young-generation collections (CPython's default: 700).
#: A page allocates a few thousand; at 700 each request paid several collections, and the
#: tree page a full one every ~60 requests (benchmarks/RESULTS.md, session 11).
GC_YOUNG_THRESHOLD = 20_000


def _freeze_heap() -> None:
    """Before the workers fork: move everything loaded so far (the app, the Reference Model,
    the libraries) out of the collector's sight, so that no collection in a worker walks it
    again (and so touches, and copies, the pages shared with the master), and collect the
    young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


#: gunicorn's default access log line, and how long the worker took over the request.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


def run_gunicorn(instance: str | None, bind: str, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    app = _app(instance)
    _freeze_heap()

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
            self.cfg.set("timeout", 120)
            self.cfg.set("post_fork", lambda _server, _worker: _after_fork(app))

        def load(self) -> Flask:
            return app

    _Server().run()


# ---- demo -------------------------------------------------------------------------------


@main.command()
@click.option("--instance", type=click.Path(file_okay=False), default="demo-instance",
              show_default=True, help="Folder for the demo instance (created fresh).")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-serve", is_flag=True, help="Create the demo data and stop.")
@click.option("--keep", is_flag=True, help="Reuse an existing demo instance.")
def demo(instance: str, port: int, host: str, no_serve: bool, keep: bool) -> None:
    """A fresh instance with a demo study, one account per role, then serve it."""
    from etmf.demo import DEMO_PASSWORD, build_demo

    path = Path(instance).resolve()
    if path.exists() and not keep:
        _remove_demo_instance(path)
    fresh = not (path / "etmf.db").exists()
    app = _app(str(path), database_url="", storage_backend="local", search_backend="whoosh")
    with app.app_context():
        if fresh:
            accounts = build_demo(app, progress=lambda msg: click.echo(f"  {msg}"))
        else:
            from etmf.demo import demo_accounts

            accounts = demo_accounts()
    click.echo("")
    click.echo(f"eTMF demo: http://{host}:{port}/")
    click.echo(f"Every account's password: {DEMO_PASSWORD}")
    for email, role_label in accounts:
        click.echo(f"  {role_label:<18} {email}")
    if not no_serve:
        run_gunicorn(str(path), f"{host}:{port}", workers=1, threads=8)


def _remove_demo_instance(path: Path) -> None:
    import shutil

    marker = path / ".etmf-demo"
    if not marker.exists():
        raise click.ClickException(
            f"{path} exists and is not a demo instance; choose another --instance folder."
        )
    for root, dirs, files_ in os.walk(path):
        for name in dirs + files_:
            os.chmod(os.path.join(root, name), 0o700)
    shutil.rmtree(path)


# ---- check ------------------------------------------------------------------------------


@main.command()
@instance_option
def check(instance: str | None) -> None:
    """Installation qualification: one pass/fail line per check; non-zero exit on failure."""
    from etmf.bootstrap import services
    from etmf.checks import installation_checks

    with app_context(instance) as app:
        results = installation_checks(services(app))
    width = max(len(r.name) for r in results)
    for r in results:
        mark = click.style("PASS", fg="green") if r.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {r.name:<{width}}  {r.detail}")
    failed = [r.name for r in results if not r.ok]
    if failed:
        click.echo(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}.")
        sys.exit(1)
    click.echo(f"All {len(results)} checks passed.")


# ---- audit --------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@instance_option
@click.option("--no-replay", is_flag=True,
              help="Skip rebuilding the read tables from the log (faster).")
def audit_verify(instance: str | None, no_replay: bool) -> None:
    """Check the hash chain, every signed checkpoint, and that replaying the log rebuilds
    the live tables. Names the first event that does not verify; non-zero exit on failure."""
    from etmf.audit.service import event_count, verify_all
    from etmf.bootstrap import services

    with app_context(instance) as app:
        svc = services(app)
        with svc.db.read_session() as session:
            total = event_count(session)
            with click.progressbar(length=total, label="Verifying the audit chain",
                                   file=sys.stderr) as bar:
                report = verify_all(session, svc.settings, replay=not no_replay,
                                    progress=bar.update)
    chain = report.chain
    if chain.ok:
        click.echo(f"Chain: intact, {chain.checked} events, head {chain.head_hash[:16]}…")
    else:
        click.echo(f"Chain: FAILED at event {chain.first_bad_seq}: {chain.problem}.")
    if report.checkpoint_problems:
        for problem in report.checkpoint_problems:
            click.echo(f"Checkpoint: FAILED: {problem}")
    else:
        click.echo(f"Checkpoints: {report.checkpoints_checked} verified.")
    if report.replayed:
        if report.replay_differences:
            for diff in report.replay_differences:
                click.echo(f"Replay: FAILED: {diff}")
        else:
            click.echo("Replay: the log rebuilds the live tables exactly.")
    if not report.ok:
        sys.exit(1)
    click.echo("Audit trail verified.")


@audit.command("checkpoint")
@instance_option
def audit_checkpoint(instance: str | None) -> None:
    """Sign a Merkle tree head over the log; store it in the database and outside it."""
    from etmf.audit.service import checkpoint_dir, create_checkpoint
    from etmf.bootstrap import services

    with app_context(instance) as app:
        svc = services(app)
        with svc.db.read_session() as session:
            sth = create_checkpoint(session, svc.settings, svc.clock.now())
        click.echo(f"Checkpoint over {sth.tree_size} events, root {sth.root_hash[:16]}…, "
                   f"written to {checkpoint_dir(svc.settings)}.")


@audit.command("prove")
@instance_option
@click.argument("event_id", type=int)
def audit_prove(instance: str | None, event_id: int) -> None:
    """Print an inclusion proof (JSON) of one event against the latest checkpoint.

    Check it offline with `python proofcheck.py bundle.json` (etmf/audit/proofcheck.py
    needs only Python and the cryptography package)."""
    import json

    from etmf.audit.service import prove
    from etmf.bootstrap import services

    with app_context(instance) as app:
        svc = services(app)
        with svc.db.read_session() as session:
            bundle = prove(session, svc.settings, event_id)
    click.echo(json.dumps(bundle, indent=2, sort_keys=True))


def _load_area_commands() -> None:
    """Each ``<area>/commands.py`` with ``register(main)`` adds its own commands."""
    from etmf.areas import area_modules

    for module in area_modules("commands"):
        module.register(main)


_load_area_commands()


def register_flask_cli(app: Flask) -> None:
    """`flask --app etmf` gets the same commands (handy in development)."""
    app.cli.add_command(db)
    app.cli.add_command(audit)

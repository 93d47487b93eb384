"""ACC-1: every route of the app × every role against the expected table.

The table is ``permission_matrix.EXPECTED``. A route without an entry fails
``test_every_route_has_an_entry_in_the_permission_matrix`` with exactly the missing
endpoints; each role's run then requests every route (GETs first, then POSTs with a valid
CSRF token) and checks the answer against the policy.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from etmf.accounts.guards import READ_ONLY_ALLOWED
from etmf.accounts.roles import ROLES
from tests.conftest import csrf_from, make_pdf
from tests.integration.accounts.conftest import try_sign_in
from tests.integration.accounts.permission_matrix import (
    EXPECTED,
    JSON,
    UPLOAD,
    Admin,
    Flow,
    Policy,
    Public,
    SignedIn,
    Study,
)

STUDY_ROLES = [code for code, r in ROLES.items() if r.study_scoped and code != "inspector"]
SITE_LIMITED = {"investigator": "101", "site_staff": "101", "monitor": "101"}
ROLES_UNDER_TEST = ["anonymous", "admin", *STUDY_ROLES, "inspector", "inspector_outside_window",
                    "member_of_another_study"]
ANONYMOUS_LIKE = {"anonymous", "inspector_outside_window"}

#: URL arguments → a value; "real" ones name an object that exists in the test world.
ARGS = {
    "study_id": ("@study", True),
    "document_id": ("@document", True),
    "number": (1, True),
    "user_id": ("@author", True),
    "object_type": ("document", True),
    "object_id": ("@document", True),
    "filename": ("etmf.css", False),  # exists for `static`, not for `security.static`
    "path": ("x", False),
    "token": ("x", False),
    "token_id": (999_999, False),
    "grant_id": (999_999, False),
    "membership_id": (999_999, False),
    "issue_id": (999_999, False),
    "request_id": (999_999, False),
    "cert_id": (999_999, False),
    "job_id": ("0" * 32, False),
    "visit_id": (999_999, False),
    "site_id": (999_999, False),  # a site (monitoring.site_page)
    "name": ("x", False),  # an identity provider (sso.*)
}


def _routes(app):  # type: ignore[no-untyped-def]
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


@pytest.mark.req("ACC-1")
def test_every_route_has_an_entry_in_the_permission_matrix(app):
    missing = sorted({rule.endpoint for rule, _m in _routes(app)} - set(EXPECTED))
    assert not missing, (
        "These endpoints have no entry in tests/integration/accounts/permission_matrix.py "
        "(EXPECTED): " + ", ".join(missing) + ". Add one line per endpoint saying who may "
        "call it (Study(permission), Admin(), SignedIn(), Public() or Flow(why)).")
    unknown_args = sorted({f"{rule.endpoint}: <{arg}>" for rule, _m in _routes(app)
                           for arg in rule.arguments if arg not in ARGS})
    assert not unknown_args, (
        "These URL arguments are unknown to the permission matrix; add them to ARGS in "
        "tests/integration/accounts/test_permission_matrix.py: " + ", ".join(unknown_args))


def _allowed(policy: Policy, role: str) -> bool | set[int]:
    """True if the role is let through; else the set of acceptable refusal statuses."""
    if isinstance(policy, Public):
        return True
    if role in ANONYMOUS_LIKE:
        return {302, 401}
    if isinstance(policy, SignedIn):
        return True
    if isinstance(policy, Admin):
        return True if role == "admin" else {403, 404}
    assert isinstance(policy, Study)
    if role in ("admin", "member_of_another_study"):
        return {404}
    code = "inspector" if role == "inspector" else role
    return True if policy.permission in ROLES[code].permissions else {403, 404}


@pytest.fixture
def matrix_world(world, svc, make_inspector):  # type: ignore[no-untyped-def]
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    doc = world.document(author, title="Matrix protocol", state="approved", qc=qc)
    return {"@study": world.study_id, "@document": doc, "@author": author.id}


def _client_for(role: str, world, app, login, make_inspector, clock):  # type: ignore[no-untyped-def]
    client = app.test_client()
    if role == "anonymous":
        return client
    if role == "inspector":
        return login(make_inspector()[0])
    if role == "inspector_outside_window":
        inspector, _ = make_inspector(starts=clock.now() + timedelta(days=1),
                                      ends=clock.now() + timedelta(days=2))
        assert try_sign_in(client, inspector.email).status_code == 200  # refused
        return client
    if role == "member_of_another_study":
        from etmf.studies.services import NewStudy, create_study

        with world.uow() as uow:
            other = create_study(uow, NewStudy(protocol_number="OTH-1", title="Other study",
                                               phase="I", sponsor="Other"))
            uow.commit()
        return login(world.user("study_manager", study_id=other))
    return login(world.user(role, site=SITE_LIMITED.get(role)))


@pytest.mark.req("ACC-1")
@pytest.mark.req("ACC-2")
@pytest.mark.req("ACC-3")
@pytest.mark.parametrize("role", ROLES_UNDER_TEST)
def test_each_role_gets_exactly_what_the_matrix_allows(role, app, world, matrix_world, login,
                                                      make_inspector, clock):
    client = _client_for(role, world, app, login, make_inspector, clock)
    token = csrf_from(client.get("/login" if role in ANONYMOUS_LIKE else "/account/")
                      .get_data(as_text=True))
    routes = [(rule, method) for rule, method in _routes(app)
              if rule.endpoint in EXPECTED and not isinstance(EXPECTED[rule.endpoint], Flow)]
    routes.sort(key=lambda rm: (rm[1] != "GET", rm[0].endpoint))  # reads before writes
    problems: list[str] = []
    for rule, method in routes:
        policy = EXPECTED[rule.endpoint]
        values, real = {}, True
        for arg in rule.arguments:
            value, is_real = ARGS[arg]
            values[arg] = matrix_world.get(value, value) if isinstance(value, str) else value
            real = real and is_real
        path = rule.build(values, append_unknown=False)[1]
        if method == "GET":
            response = client.get(path, query_string=policy.data)
        else:
            data = {k: ((io.BytesIO(make_pdf("Matrix upload")), "matrix.pdf")
                        if v == UPLOAD else v) for k, v in policy.data.items()}
            if data.pop(JSON, False):
                response = client.open(path, method=method, json=data,
                                       headers={"X-CSRFToken": token})
            else:
                response = client.open(path, method=method,
                                       data={**data, "csrf_token": token})
        status = response.status_code
        location = response.headers.get("Location", "")
        response.close()
        allowed = _allowed(policy, role)
        if (role == "inspector" and method != "GET" and not isinstance(policy, Public)
                and rule.endpoint not in READ_ONLY_ALLOWED):
            allowed = {403}
        where = f"{method} {path} ({rule.endpoint})"
        if allowed is True:
            if status in (401, 403) or (status == 302 and "/login" in location):
                problems.append(f"{where}: refused with {status}, the matrix allows it")
            elif real and method == "GET" and status >= 400:
                problems.append(f"{where}: {status} for an allowed role and existing objects")
        elif status not in allowed:
            problems.append(f"{where}: answered {status}, expected one of {sorted(allowed)}")
        elif status == 302 and "/login" not in location:
            problems.append(f"{where}: redirected to {location}, not to the sign-in page")
    assert not problems, f"role {role}:\n" + "\n".join(problems)

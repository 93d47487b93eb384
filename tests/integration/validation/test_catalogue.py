"""The requirement catalogue shipped with the package, and the markers that trace tests to it."""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

import pytest

from etmf.validation.requirements import BY_ID, REQUIREMENTS

REPO = Path(__file__).resolve().parents[3]
TESTS = REPO / "tests"


def _requirements_md() -> Path | None:
    for candidate in (Path("/work/shared/REQUIREMENTS.md"),
                      REPO.parent / "shared" / "REQUIREMENTS.md"):
        if candidate.is_file():
            return candidate
    return None


def _parse(text: str) -> dict[str, tuple[str, str, str]]:
    """ID -> (group, source, text) from REQUIREMENTS.md."""
    found: dict[str, tuple[str, str, str]] = {}
    group = source = ""
    for line in text.splitlines():
        if heading := re.match(r"^## (.+?) — (.+)$", line):
            group, source = heading.group(1), heading.group(2)
        elif item := re.match(r"^- \*\*([A-Z]+-\d+)\*\* (.+)$", line):
            found[item.group(1)] = (group, source, item.group(2))
    return found


def test_catalogue_holds_every_regulatory_requirement_verbatim():
    path = _requirements_md()
    if path is None:
        pytest.skip("REQUIREMENTS.md is not beside this checkout (../shared/REQUIREMENTS.md)")
    expected = _parse(path.read_text(encoding="utf-8"))
    assert len(expected) >= 30, "REQUIREMENTS.md was not parsed"
    regulatory = {r.id: r for r in REQUIREMENTS if r.kind == "regulatory"}
    assert sorted(regulatory) == sorted(expected), (
        f"missing from the catalogue: {sorted(set(expected) - set(regulatory))}; "
        f"not in REQUIREMENTS.md: {sorted(set(regulatory) - set(expected))}")
    for rid, (group, source, text) in expected.items():
        req = regulatory[rid]
        assert (req.group, req.source, req.text) == (group, source, text), rid


def test_functional_requirements_have_area_ids_text_and_source():
    ids = [r.id for r in REQUIREMENTS]
    assert len(ids) == len(set(ids)) == len(BY_ID)
    functional = [r for r in REQUIREMENTS if r.kind == "functional"]
    assert {r.group for r in functional} >= {"Filing", "Lifecycle", "Signing", "Audit trail",
                                             "Inspection"}
    for req in functional:
        assert re.fullmatch(r"FR-[A-Z]+-\d+", req.id), req.id
        assert req.text.endswith(".") and req.source, req.id


def _req_markers(path: Path):  # type: ignore[no-untyped-def]
    """(line, ID) of every ``pytest.mark.req(…)`` call in one test module; ID None when an
    argument is not a string literal (the catalogue cannot be checked then: write one).

    Tokens, not ``ast.parse``: CPython 3.11.7 can raise a spurious "AST constructor recursion
    depth mismatch" SystemError when parsing from deep inside a pytest run. Tokens also keep
    marker-like text inside strings (docstrings, generated test files) out of the scan."""
    with path.open("rb") as fh:
        tokens = [t for t in tokenize.tokenize(fh.readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
                                    tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)]
    for i in range(len(tokens) - 3):
        if [t.string for t in tokens[i:i + 4]] != ["mark", ".", "req", "("]:
            continue
        args: list[list[tokenize.TokenInfo]] = [[]]
        depth = 0
        for tok in tokens[i + 4:]:
            if tok.string in "([{" and tok.type == tokenize.OP:
                depth += 1
            elif tok.string in ")]}" and tok.type == tokenize.OP:
                if depth == 0:
                    break
                depth -= 1
            if tok.string == "," and depth == 0:
                args.append([])
            else:
                args[-1].append(tok)
        args = [a for a in args if a]
        if not args:
            yield tokens[i].start[0], None
        for arg in args:
            text = arg[0].string if len(arg) == 1 and arg[0].type == tokenize.STRING else ""
            plain = text[:1] in ("'", '"') and "\\" not in text  # no prefix, no escapes
            yield tokens[i].start[0], text.strip(text[:1]) if plain else None


@pytest.mark.req("FR-VAL-2")
def test_every_requirement_marker_in_the_test_tree_names_a_catalogue_id():
    problems = []
    markers = 0
    for path in sorted(TESTS.rglob("*.py")):
        for line, rid in _req_markers(path):
            markers += 1
            if rid not in BY_ID:
                problems.append(f"{path.relative_to(REPO)}:{line}: req({rid!r})")
    assert markers > 50, "the scan found (almost) no markers: is it looking in tests/?"
    assert not problems, ("requirement markers with an ID that is not in "
                          "etmf/validation/requirements.py:\n" + "\n".join(problems))


def test_the_marker_scan_sees_typos_and_non_literals_but_not_text_in_strings(tmp_path):
    module = tmp_path / "test_sample.py"
    module.write_text(
        'import pytest\n'
        'DOC = "a string mentioning pytest.mark.req(\'NOT-1\') is not a marker"\n'
        'pytestmark = [pytest.mark.browser, pytest.mark.req("AUD-5")]\n'
        '@pytest.mark.req("AUD-99")\n'
        '@pytest.mark.req(IDS[0], "SIG-1")\n'
        'def test_x():\n    pass\n', encoding="utf-8")
    assert list(_req_markers(module)) == [(3, "AUD-5"), (4, "AUD-99"), (5, None), (5, "SIG-1")]

"""The shape of the package: layers that only import downwards, no import
circles, small modules, and type annotations that hold."""

from __future__ import annotations

import ast
import importlib
import io
import re
import shutil
import subprocess
import sys
import tokenize
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tether"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute name ``from ... import`` refers to."""
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        package.pop()
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def module_level_imports(importer: str) -> set[str]:
    """The package's modules that ``importer`` imports outside any function,
    ``if TYPE_CHECKING:`` blocks included."""
    tree = ast.parse(MODULES[importer].read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = resolve(importer, child)
                for alias in child.names:
                    submodule = f"{target}.{alias.name}"
                    found.add(submodule if submodule in MODULES else target)
            visit(child)

    visit(tree)
    return {name for name in found if name in MODULES and name != importer}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_the_package_modules() -> None:
    graph = {name: module_level_imports(name) for name in MODULES}
    assert graph["tether.application.pipeline"], "the import graph is empty: the parser is broken"
    assert cycles(graph) == []


def test_no_module_is_over_600_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}


def test_function_level_imports_say_why() -> None:
    """Imports belong at the top of a module; one inside a function (for an
    optional dependency) carries a comment that says why."""
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    nearby = lines[max(0, inner.lineno - 3) : inner.lineno]
                    if not any("#" in line for line in nearby):
                        unexplained.append(f"{name}:{inner.lineno}")
    assert unexplained == []


def test_layers_import_only_downwards() -> None:
    """import-linter's layers contract (pyproject.toml), TYPE_CHECKING imports included."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


#: Werkzeug's private names tether uses, each wrapped once in
#: tether.application.werkzeug_private (tested in tests/test_werkzeug_private.py).
WERKZEUG_PRIVATE = re.compile(
    r"werkzeug\._internal|\b_wsgi_decoding_dance\b|\._list\b|\b_converters\b|\b_on_close\b|\._status(_code)?\b"
    r"|\b_parsed_content_type\b|\b_cached_data\b|\bdict\.update\("
)


def test_werkzeug_private_parts_are_reached_in_one_module() -> None:
    """A Werkzeug release that changes one of them then breaks one module, whose
    tests say which part changed."""
    found = [
        f"{name}: {match.group()}"
        for name, path in MODULES.items()
        if name != "tether.application.werkzeug_private"
        for match in WERKZEUG_PRIVATE.finditer(path.read_text())
    ]
    assert found == []


TESTS = ROOT / "tests"
#: The test suite's own modules (tests/flask_project and the Flask suite's plugin are other projects).
TEST_FILES = sorted(path for path in TESTS.rglob("*.py") if "flask_project" not in path.parts)
#: The one reader of the switch that makes a missing service fail the run.
SERVICES_SWITCH = "TETHER_REQUIRE_" + "SERVICES"


def test_no_test_module_imports_from_another() -> None:
    """Shared helpers live in tests/support.py (or a helper module), fixtures in
    conftest.py: a test module imported by another runs its module-level code
    twice and ties the two together."""
    found = []
    for path in TEST_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(TESTS)}:{node.lineno} {name}" for name in names
                      if name.removeprefix("tests.").split(".")[0].startswith(("test_", "conftest"))]
    assert found == []


def test_one_place_reads_the_services_switch() -> None:
    readers = [str(path.relative_to(ROOT)) for path in [*TEST_FILES, *PACKAGE.rglob("*.py")]
               if SERVICES_SWITCH in path.read_text() and path != TESTS / "support.py"]
    assert readers == []


def test_a_missing_service_skips_or_fails_by_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from support import missing  # here: the layer checks above need no test helpers

    for value in (None, "", "0", "yes"):
        if value is None:
            monkeypatch.delenv(SERVICES_SWITCH, raising=False)
        else:
            monkeypatch.setenv(SERVICES_SWITCH, value)
        with pytest.raises(pytest.skip.Exception, match=r"Redis is gone \(start it\)"):
            missing("Redis is gone", "start it")
    monkeypatch.setenv(SERVICES_SWITCH, "1")
    with pytest.raises(pytest.fail.Exception, match=f"Redis is gone, and {SERVICES_SWITCH}=1"):
        missing("Redis is gone", "start it")


def comments_and_docstrings(path: Path) -> t.Iterator[tuple[int, str]]:
    """Each comment (``tokenize``; those on consecutive lines as one, so that a
    phrase may cross lines) and docstring (``ast``) of a module, with its line."""
    source = path.read_text()
    block: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        if block and token.start[0] != last + 1:
            yield start, " ".join(block)
            block = []
        if not block:
            start = token.start[0]
        block.append(token.string.lstrip("#:").strip())
        last = token.start[0]
    if block:
        yield start, " ".join(block)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                yield node.body[0].lineno, docstring


PROSE = {name: list(comments_and_docstrings(path)) for name, path in MODULES.items()}
#: ``tether.x.y``: a module of the package, or an object reached from one.
DOTTED_NAME = re.compile(r"\btether(?:\.\w+)+")
#: ``name.py`` or ``folder/name.py``, not part of a dotted name or a longer path.
FILE_NAME = re.compile(r"(?<![\w./-])((?:[\w-]+/)*\w+\.py)\b")
#: Where a file named in the package's prose may be.
FILE_HOMES = [PACKAGE, TESTS, ROOT / "bench", ROOT / "examples", ROOT / "docs" / "examples"]
#: Names that look like references to tether's own code and are not, with why.
NOT_REFERENCES = {
    "tether.broadcast_backends": "the entry point group a package names its broadcast backend in",
    "project/app.py": "instance.py's example of a user's project layout",
    "project/pkg/__init__.py": "instance.py's example of a user's project layout",
}


def names_something(dotted: str) -> bool:
    """Whether ``dotted`` is a module of the package, or an attribute path from one."""
    parts = dotted.split(".")
    for length in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:length]))
        except ImportError:
            continue
        for attribute in parts[length:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def file_exists(name: str) -> bool:
    """Whether a file ``name`` (``x.py`` or ``folder/x.py``) is in one of the project's trees."""
    return any(str(path).endswith("/" + name) for home in FILE_HOMES for path in home.rglob(Path(name).name))


def test_the_reference_checks_tell_a_missing_name() -> None:
    assert names_something("tether.serving.asgi_body") and names_something("tether.live.broadcast.Backend")
    assert not names_something("tether.asgi_body") and not names_something("tether.live.broadcast.Nothing")
    assert file_exists("asgi_body.py") and file_exists("serving/asgi_body.py") and file_exists("conftest.py")
    assert not file_exists("asgi_bodies.py") and not file_exists("live/asgi_body.py")


def test_comments_and_docstrings_name_modules_that_exist() -> None:
    """A comment that names a module or object of tether's names one that is
    there, so a reader who follows it finds it."""
    broken = []
    for name, prose in PROSE.items():
        for line, text in prose:
            dotted = [match.group() for match in DOTTED_NAME.finditer(text)]
            files = [match.group(1) for match in FILE_NAME.finditer(text)]
            broken += [
                f"{name}:{line} {reference}"
                for reference in [*(d for d in dotted if not names_something(d)), *(f for f in files if not file_exists(f))]
                if reference not in NOT_REFERENCES
            ]
    assert sum(len(prose) for prose in PROSE.values()) > 1000, "no comments found: the scanner is broken"
    assert broken == []


#: ARCHITECTURE.md names files relative to the package's folder (``serving/wsgi.py``)
#: or the repository's root (``tests/conftest.py``).
ARCHITECTURE_PATH = re.compile(r"(?<![\w./-])((?:[\w-]+/)+\w+\.py|src/tether/[\w/.]*\w)")
#: The user documentation names the package's files from the repository's root.
DOCS_PATH = re.compile(r"\bsrc/tether/[\w/.]*\w")


def test_the_documentation_names_package_files_that_exist() -> None:
    broken = []
    pages = {ROOT / "ARCHITECTURE.md": ARCHITECTURE_PATH, **{page: DOCS_PATH for page in (ROOT / "docs").glob("*.md")}}
    for page, pattern in pages.items():
        text = page.read_text()
        paths = [match.group(1) if match.groups() else match.group() for match in pattern.finditer(text)]
        broken += [f"{page.name}: {path}" for path in paths
                   if not any((base / path).exists() for base in (ROOT, PACKAGE, ROOT / ".ci"))]
        broken += [f"{page.name}: {dotted}" for dotted in DOTTED_NAME.findall(text)
                   if dotted not in NOT_REFERENCES and not names_something(dotted)]
    assert broken == []


#: Phrases that tell a comment's history ("was X, now Y") rather than what the
#: code does. "No longer" is not among them: the package uses it for states at
#: run time (a history that no longer holds a message, a lease no longer held).
HISTORY = re.compile(
    r"(?<!\bis )(?<!\bare )(?<!\bbe )(?<!\bbeen )\bused to\b|\bissue #?\d+|\bwas \d"
    r"|\b(before|after|since) this change\b|\bas before\b|\b(previously|formerly|anymore|any longer)\b"
    r"|\bfrom (under |over |about )?\d[\d.]*\s*(x|%|µs|ms)(?!\w)[^.,;]{0,40}? to (under |over |about )?\d",
    re.IGNORECASE,
)


def test_the_history_pattern_tells_narration() -> None:
    narration = ["takes it from 1.60x the direct attribute to under 1.5x", "was 3 ms", "(issue 13)",
                 "it used to copy", "before this change it copied", "it no longer copies anymore"]
    present = ["the lock is used to order them", "the history no longer holds it", "ids from 0 to 9"]
    assert [text for text in narration if not HISTORY.search(text)] == []
    assert [text for text in present if HISTORY.search(text)] == []


def test_comments_and_docstrings_say_what_is_not_what_was() -> None:
    """A comment says what the code does and why; what it once did, and by how
    much a change moved a figure, belong in the commit message."""
    found = [f"{name}:{line} {match.group()!r}" for name, prose in PROSE.items()
             for line, text in prose for match in HISTORY.finditer(text)]
    assert found == []

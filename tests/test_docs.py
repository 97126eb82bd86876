"""The documentation builds strictly (any warning, broken reference or page
missing from the table of contents fails it), its API reference covers what
``import tether`` offers, its pages show Python only from tested files, and the
built tutorial renders in Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import tether
from support import FLAGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as the README says, into a temporary folder."""
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"the docs do not build strictly:\n{result.stdout}\n{result.stderr}"
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return out / "html"


def test_every_page_is_built(built: Path) -> None:
    pages = sorted(path.relative_to(DOCS).with_suffix(".html") for path in DOCS.rglob("*.md")
                   if path.name != "README.md" and "examples" not in path.parts)
    missing = [str(page) for page in pages if not (built / page).is_file()]
    assert pages and not missing, missing


def test_the_api_reference_covers_every_public_name(built: Path) -> None:
    from sphinx.util.inventory import InventoryFile

    with open(built / "objects.inv", "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    documented = {name for kind in inventory.values() for name in kind}
    public = [f"tether.{name}" for name in tether.__all__ if not isinstance(getattr(tether, name), types.ModuleType)]
    extra = ["tether.celery.init_celery", "tether.celery.progress", "tether.celery.task_events",
             "tether.celery.ContextTask", "tether.testing.TetherClient", "tether.testing.WebSocketSession",
             "tether.live.broadcast.Backend", "tether.compat.alias_flask", "tether.tracing.trace_websockets"]
    undocumented = [name for name in public + extra if name not in documented]
    assert not undocumented, f"add to docs/api/: {undocumented}"


def test_pages_show_python_only_from_tested_files() -> None:
    """Python on a page comes from a file (``literalinclude``) that a test runs,
    never a fenced block that nothing checks."""
    inline = []
    for page in DOCS.rglob("*.md"):
        if "examples" in page.parts:
            continue
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if re.match(r"\s*(```|:::)\s*(\{code-block\}\s*)?(python|py|pycon)\b", line):
                inline.append(f"{page.relative_to(ROOT)}:{number}")
    assert not inline, f"move these into docs/examples/ and test them: {inline}"


def test_the_build_command_is_the_readmes() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "sphinx-build -W --keep-going -n docs docs/_build" in readme
    assert "sphinx" in (ROOT / "pyproject.toml").read_text()


def test_the_built_tutorial_renders_in_chromium(built: Path, chromium_path: str) -> None:
    """The tutorial as a reader sees it: titled with the package's version, its
    heading shown, its first example (``hello.py``) a visible, highlighted block in
    the theme's monospace font, its caption above it, and no script error."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto((built / "tutorial.html").as_uri())
            assert page.title() == f"Tutorial: a live board - tether {tether.__version__}"
            heading = page.locator("article h1")
            assert heading.is_visible() and heading.inner_text() == "Tutorial: a live board"
            example = page.locator("div.literal-block-wrapper", has_text="hello.py").first
            assert example.locator(".code-block-caption").inner_text().strip() == "hello.py"
            code = example.locator("div.highlight pre")
            assert code.is_visible() and code.bounding_box()["height"] > 100  # type: ignore[index]
            assert code.inner_text().strip() == (DOCS / "examples" / "tutorial" / "hello.py").read_text().strip()
            style = "element => getComputedStyle(element)"
            font = code.evaluate(f"{style}.fontFamily")
            assert font.endswith("monospace") and font != "monospace", font  # the theme's stack, not the default
            keyword = code.locator("span.kn").first  # "from", coloured by the highlighting
            assert keyword.evaluate(f"{style}.color") != code.evaluate(f"{style}.color")
            assert not errors, errors
        finally:
            browser.close()

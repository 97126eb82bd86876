"""Every Python snippet of README.md compiles, uses no name it does not define
or import (pyflakes' rules, through ruff), and imports from tether only names
tether has. A snippet may use ``app``, the app the README's first snippet makes;
anything else it uses, it imports."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"

#: What every snippet may use without importing it: the app of the first snippet.
GIVEN = ["app"]


def snippets() -> list[tuple[int, str]]:
    """Each ```python block (indented ones too, as in lists), with its line."""
    found = []
    lines = README.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        fence = line.strip()
        if start is None and fence == "```python":
            start, indent = number, line[: len(line) - len(line.lstrip())]
        elif start is not None and fence == "```":
            body = "\n".join(each.removeprefix(indent) for each in lines[start:number - 1])
            found.append((start, textwrap.dedent(body) + "\n"))
            start = None
    return found


SNIPPETS = snippets()


def test_the_readme_has_python_snippets() -> None:
    assert len(SNIPPETS) >= 2  # the rest of the Python is in docs/, run by tests/test_docs_examples.py
    assert any("EventStream" in code for _, code in SNIPPETS)


@pytest.mark.parametrize(("line", "code"), SNIPPETS, ids=[f"line-{line}" for line, _ in SNIPPETS])
def test_a_snippet_compiles_and_imports_what_it_uses(line: int, code: str, tmp_path: Path) -> None:
    compile(code, f"README.md:{line}", "exec")
    snippet = tmp_path / f"readme_line_{line}.py"
    snippet.write_text(code)
    result = subprocess.run(
        [
            sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--output-format", "concise",
            "--select", "F", "--ignore", "F401", "--config", f"builtins = {GIVEN!r}", str(snippet),
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"README.md snippet at line {line}:\n{code}\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(("line", "code"), SNIPPETS, ids=[f"line-{line}" for line, _ in SNIPPETS])
def test_a_snippet_imports_from_tether_only_what_tether_has(line: int, code: str) -> None:
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and re.match(r"tether(\.|$)", node.module):
            module = importlib.import_module(node.module)
            missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
            assert not missing, f"README.md snippet at line {line}: {node.module} has no {missing}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if re.match(r"tether(\.|$)", alias.name):
                    importlib.import_module(alias.name)

"""Helpers of the tests that run the documentation's examples (docs/examples/)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


def load(relative: str) -> types.ModuleType:
    """Import ``docs/examples/<relative>`` as a module of its own (a fresh app each time)."""
    path = EXAMPLES / relative
    name = f"docs_example_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (for examples that alias flask or set
    process-wide providers); its stdout, or the test fails with its stderr."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT / "src")]), **(env or {})}
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_pytest(target: Path, cwd: Path) -> None:
    """Run an example's own tests, as its reader would."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT / "src")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(cwd), str(target)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


"""Other projects' own test suites, run against tether: their source
distributions are downloaded at test time (``pip download``), kept in
``~/.cache/tether-tests`` (``TETHER_TEST_CACHE``), checked against their
published SHA-256, and their tests run in a subprocess, with ``flask`` aliased
to tether (``-p tether_alias``) or not."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import missing

PLUGIN_DIR = Path(__file__).parent / "flask_suite"
#: The published SHA-256 of Flask 3.1.3's source archive, whose suite and tutorial tests run.
FLASK_SHA256 = "0ef0e52b8a9cd932855379197dd8f94047b359ca0a78695144304cb45f87c9eb"


def cache_dir() -> Path:
    return Path(os.environ.get("TETHER_TEST_CACHE", Path.home() / ".cache" / "tether-tests"))


def fetch(requirement: str, archive_name: str, sha256: str) -> Path:
    """The unpacked source tree of ``requirement`` (``name==version``), downloaded once."""
    cache = cache_dir()
    tree = cache / archive_name.removesuffix(".tar.gz")
    if (tree / ".verified").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / archive_name
    if not archive.exists():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(cache)],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0 or not archive.exists():
            missing(f"could not download the source of {requirement}: {result.stderr.strip()[-500:]}", "needs the network")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        archive.unlink()
        pytest.fail(f"{archive_name} has SHA-256 {digest}, not the published {sha256}: removed, run again.")
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    (tree / ".verified").touch()
    return tree


def run_suite(
    cwd: Path, args: list[str], report: Path, *, alias: bool, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``cwd`` and write a JUnit report; ``alias`` makes ``import
    flask`` give tether from the start of the run."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "FLASK_DEBUG", "TETHER_APP", "TETHER_DEBUG")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), full_env.get("PYTHONPATH", "")]))
    plugin = ["-p", "tether_alias"] if alias else []
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugin, f"--junitxml={report}", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=900,
    )


def results(report: Path, prefix: str = "") -> dict[str, str]:
    """``classname::name`` -> passed, failed or skipped, from a JUnit report."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        outcomes[f"{prefix}{case.get('classname')}::{case.get('name')}"] = outcome
    return outcomes

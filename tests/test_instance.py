"""The default instance folder, by Flask's rules, for each project layout."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import tether


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_a_single_module_project_has_its_instance_folder_beside_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("single")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    assert tether.Tether(name).instance_path == str(tmp_path / "project" / "instance")


def test_a_package_has_its_instance_folder_beside_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique("pkg")
    package = tmp_path / "project" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    assert tether.Tether(name).instance_path == str(tmp_path / "project" / "instance")
    assert tether.Tether(f"{name}.views").instance_path == str(tmp_path / "project" / "instance")


def test_a_namespace_package_uses_the_portion_that_holds_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique("ns")
    for portion in ("one", "two"):
        (tmp_path / portion / name).mkdir(parents=True)
    (tmp_path / "two" / name / "app.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "one"))
    monkeypatch.syspath_prepend(str(tmp_path / "two"))
    assert tether.Tether(f"{name}.app").instance_path == str(tmp_path / "two" / "instance")


def test_an_installed_module_has_its_instance_folder_under_the_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique("installed")
    site = tmp_path / "prefix" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    assert tether.Tether(name).instance_path == str(tmp_path / "prefix" / "var" / f"{name}-instance")


def test_a_name_that_cannot_be_found_uses_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert tether.Tether(unique("nowhere")).instance_path == str(tmp_path / "instance")


def test_an_instance_path_given_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be absolute"):
        tether.Tether("test_app", instance_path="relative/instance")
    assert tether.Tether("test_app", instance_path=str(tmp_path)).instance_path == str(tmp_path)

"""The code base stays ruff-clean, layered and small (rules in pyproject.toml and the README's layout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

MAX_LINES = 300


def test_ruff_reports_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([command, "--no-cache"], cwd=root, capture_output=True, text=True)


def test_layers_and_no_import_cycles():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "genlab layers KEPT" in result.stdout and "no import cycles KEPT" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """The contract is not vacuous: a model importing the run API (a layer above it) is caught."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "genlab", copy / "genlab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    gan = copy / "genlab" / "models" / "gan.py"
    gan.write_text(gan.read_text() + "\nfrom genlab.api import Run  # noqa: E402, F401\n")
    result = lint_imports(copy)
    assert result.returncode != 0 and "genlab layers BROKEN" in result.stdout
    assert "genlab.models.gan -> genlab.api" in result.stdout


def test_no_module_is_over_300_lines():
    files = [*(REPO_ROOT / "genlab").rglob("*.py"), *(REPO_ROOT / "scripts").rglob("*.py")]
    long = {str(p.relative_to(REPO_ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these files along their responsibilities: {long}"

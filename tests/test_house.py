"""The house rules of the package: one-way layers, small modules, no private names of other packages,
and a wheel that works outside the checkout."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "liqlab"
MAX_LINES = 700


def _sources(suffix: str = ".py") -> list[Path]:
    return sorted(p for p in PACKAGE.rglob(f"*{suffix}") if "__pycache__" not in p.parts)


def test_layers_import_one_way():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed in this environment (pip install liqlab[test])")
    out = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "1 kept, 0 broken" in out.stdout


def test_no_module_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _private_uses(tree: ast.AST) -> list[str]:
    """Private names (``_x``, not ``__x__``) of other packages: imported by name, or read as an
    attribute of an imported module."""
    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    found, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not alias.name.startswith("liqlab"):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
                    if any(private(part) for part in alias.name.split(".")):
                        found.append(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("liqlab") or node.module == "__future__":
                continue
            if any(private(part) for part in node.module.split(".")):
                found.append(node.module)
            for alias in node.names:
                if private(alias.name):
                    found.append(f"{node.module}.{alias.name}")
                else:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append(f"{modules[base.id]}...{node.attr}")
    return found


def test_no_private_names_of_other_packages():
    uses = {str(p.relative_to(ROOT)): u for p in _sources() if (u := _private_uses(ast.parse(p.read_text())))}
    assert uses == {}


def test_the_private_name_check_finds_them():
    code = "from plotly.serializers import _py_to_js\nimport tornado.web as w\nw._private = 1\nfrom x import __version__\n"
    assert _private_uses(ast.parse(code)) == ["plotly.serializers._py_to_js", "tornado.web..._private"]


def test_front_end_code_patches_nothing():
    """The package's JavaScript (its own, not the built plotly.js bundle) reads no private state of
    plotly.js and patches no prototype."""
    bad = re.compile(r"\._fullLayout|\.prototype\.|__proto__")
    hits = {str(p.relative_to(ROOT)) for p in _sources(".js")
            if not p.name.startswith("plotly-liqlab") and bad.search(p.read_text())}
    assert hits == set()


def test_package_reads_nothing_outside_itself():
    """No library module resolves paths above the package (a checkout's ``../shared`` or top level)."""
    pattern = re.compile(r"parents\[\d\]|\.\./|\"shared\"|'shared'")
    hits = {str(p.relative_to(ROOT)) for p in _sources() if pattern.search(p.read_text())}
    assert hits == set()


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it (without dependencies) into a fresh virtual environment that
    borrows this environment's third-party packages, and use it from another folder."""
    dist = tmp_path / "dist"
    # a copy of the sources: a build folder left in the checkout must not leak old modules into the wheel
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "node_modules",
                                                            "test-artifacts", "*.egg-info", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("liqlab-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the wheel's own files, unpacked as an installer would (a wheel is a zip of site-packages)
    shutil.unpack_archive(str(wheel), str(site), "zip")
    # third-party packages from this environment, after the venv's own (never this checkout)
    (site / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = r"""
import json, liqlab
from pathlib import Path
from liqlab.sim.datasets import load_sample
from liqlab.core.engine import compute_heatmap
from liqlab.core.brackets import available_tables
from liqlab.serve.published import published_paths
m = load_sample("ETHUSDT")
r = compute_heatmap(m, mix="balanced")
print(json.dumps({"file": liqlab.__file__, "candles": len(m), "predicted": float(r.predicted.to_numpy().sum()),
                  "tables": available_tables(), "apps": [p.name for p in published_paths()],
                  "apps_exist": all(p.is_file() for p in published_paths())}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run([str(py), "-c", code], cwd=work, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).is_relative_to(env_dir), info["file"]
    assert info["candles"] > 1000 and info["predicted"] > 0
    assert "binance_btcusdt" in info["tables"]
    assert info["apps"] == ["02_explorer.ipynb", "03_liquidation_map.ipynb", "05_cascade_lab.ipynb", "06_market_scan.ipynb"]
    assert info["apps_exist"]

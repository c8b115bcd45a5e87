"""The committed plotly.js bundle is what the pinned build in ``js/`` makes, byte for byte."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from liqlab.apps.plotly_bundle import bundle_path

JS = Path(__file__).resolve().parents[1] / "js"
TOOLS = {name: shutil.which(name) for name in ("node", "npm")}


def test_the_build_is_pinned_exactly():
    package = json.loads((JS / "package.json").read_text())
    lock = json.loads((JS / "package-lock.json").read_text())
    pins = package["devDependencies"]
    assert set(pins) == {"plotly.js", "esbuild"}
    assert all(v[0].isdigit() for v in pins.values()), pins  # exact versions, no ranges
    assert {n: lock["packages"][f"node_modules/{n}"]["version"] for n in pins} == pins


@pytest.mark.slow
@pytest.mark.skipif(not all(TOOLS.values()), reason="node and npm are needed to rebuild the plotly.js bundle")
def test_the_committed_bundle_equals_a_fresh_build(tmp_path):
    work = tmp_path / "js"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "build.mjs"):
        shutil.copy2(JS / name, work / name)
    shutil.copytree(JS / "src", work / "src")
    run = dict(cwd=work, capture_output=True, text=True, timeout=600)
    npm = subprocess.run([TOOLS["npm"], "ci", "--no-audit", "--no-fund"], **run)
    if npm.returncode != 0 and any(code in npm.stderr + npm.stdout for code in ("ENOTFOUND", "EAI_AGAIN")):
        pytest.skip(f"the npm registry is unreachable: {npm.stderr.strip().splitlines()[-1:]}")
    assert npm.returncode == 0, npm.stderr
    out = tmp_path / "plotly-liqlab.js"
    build = subprocess.run([TOOLS["node"], "build.mjs", str(out)], **run)
    assert build.returncode == 0, build.stderr
    committed = bundle_path().read_bytes()
    rebuilt = out.read_bytes()
    assert len(rebuilt) == len(committed) and rebuilt == committed, "run `make bundle` and commit the result"

"""The suite's own rules: the `shared` marker skips without ../shared, and the package's doctests pass."""
import doctest
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_shared_marker_skips_when_the_shared_folder_is_absent(tmp_path):
    env = dict(os.environ, VBG_SHARED=str(tmp_path / "nowhere"))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "shared",
                          "tests/test_gt_video.py", "tests/train/test_weights.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "passed" not in res.stdout.splitlines()[-1]
    assert f"needs the shared data folder {tmp_path / 'nowhere'} (absent)" in res.stdout


def _modules_with_doctests():
    for path in sorted((ROOT / "vbg_app").rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize("name", list(_modules_with_doctests()))
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

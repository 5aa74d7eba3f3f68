"""vbg_app.resources: the data root in each layout (source tree, installed wheel, PyInstaller bundle)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vbg_app import resources
from vbg_app.errors import EXIT_BAD_INPUT, BadInput

ROOT = Path(__file__).resolve().parents[1]


def data_root(folder: Path) -> Path:
    (folder / "models").mkdir(parents=True)
    (folder / "assets" / "backgrounds").mkdir(parents=True)
    (folder / "models" / resources.DEFAULT_MODEL).write_bytes(b"onnx")
    return folder


@pytest.fixture
def no_bundle(monkeypatch):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)


def test_source_tree(no_bundle):
    # the tests run from a checkout (editable install): vbg_app/_data is never made there
    assert not (ROOT / "vbg_app" / resources.WHEEL_DATA).exists()
    assert resources.root() == ROOT
    assert resources.model_path() == ROOT / "models" / "connectnet.onnx"
    assert resources.model_path().is_file()
    assert resources.asset_path("backgrounds") == ROOT / "assets" / "backgrounds"
    assert resources.model_path(resources.MEDIAPIPE_MODEL).is_file()


def test_installed_wheel_layout(no_bundle, tmp_path, monkeypatch):
    """site-packages/vbg_app/_data/{models,assets}; wins over a data folder beside the package."""
    data_root(tmp_path)  # e.g. a top-level models/ + assets/ in site-packages: not ours
    pkg = tmp_path / "vbg_app"
    data = data_root(pkg / "_data")
    monkeypatch.setattr(resources, "PACKAGE_DIR", pkg)
    assert resources.root() == data
    assert resources.model_path() == data / "models" / "connectnet.onnx"
    assert resources.asset_path("demo", "astronaut.png") == data / "assets" / "demo" / "astronaut.png"


def test_pyinstaller_bundle_wins(tmp_path, monkeypatch):
    bundle = data_root(tmp_path / "_internal")
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    assert resources.root() == bundle
    assert resources.model_path() == bundle / "models" / "connectnet.onnx"


def test_bundle_without_data_falls_through(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "empty"), raising=False)
    assert resources.root() == ROOT


def test_nothing_found_is_one_clear_error(no_bundle, tmp_path, monkeypatch):
    pkg = tmp_path / "site-packages" / "vbg_app"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(resources, "PACKAGE_DIR", pkg)
    with pytest.raises(BadInput) as info:
        resources.model_path()
    err = info.value
    assert err.exit_code == EXIT_BAD_INPUT
    assert "not installed" in err.what and str(pkg / "_data") in err.what and str(pkg.parent) in err.what
    assert "reinstall" in err.fix
    with pytest.raises(BadInput):
        resources.asset_path("backgrounds")


def test_every_shipped_pattern_matches_files():
    for pattern in resources.SHIPPED:
        assert [p for p in ROOT.glob(pattern) if p.is_file()], pattern
    assert (ROOT / "models" / resources.DEFAULT_MODEL).is_file()
    # the backgrounds' generator is source, not data
    assert not any(p.name == "generate.py" for pattern in resources.SHIPPED for p in ROOT.glob(pattern))



@pytest.mark.parametrize("size", [0, 5, (1 << 20) + 7])  # empty, one short block, two blocks (1 MiB reads)
@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_file_digest_is_hashlibs_of_the_whole_file(tmp_path, size, algorithm):
    import hashlib
    import os

    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert resources.file_digest(path, algorithm) == hashlib.new(algorithm, data).hexdigest()

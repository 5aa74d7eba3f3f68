"""The wheel: ``pip wheel .`` carries the models, backgrounds, demo portrait and training configs, and the app
installed from it runs outside the source tree.

How the installed copy gets its dependencies without downloading them: the wheel is installed with
``--no-deps`` into a fresh venv made with ``--without-pip`` (the outer pip installs into it through
``pip --python``), and a ``.pth`` file in that venv appends the test interpreter's site-packages to
``sys.path``. Paths named in a ``.pth`` line are only appended; the ``.pth`` files inside them are not run,
so the outer environment's editable install of vbg (its ``__editable__`` finder, which maps ``vbg_app`` to
this checkout) is not active there, and a non-editable vbg in the outer environment would come after the
venv's own site-packages. The tests check that ``vbg_app`` and its data resolve inside the venv. The
alternative, ``pip install`` with dependencies, downloads onnxruntime and OpenCV (~100 MB) on every run.

The build uses the test environment's setuptools (``--no-build-isolation``) when it is new enough for
pyproject.toml (>=77), else pip's isolated build (which downloads setuptools).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = "vbg_app/_data/"

if sys.platform.startswith("win"):
    pytest.skip("the venv layout below is POSIX's (bin/, lib/pythonX.Y/)", allow_module_level=True)


def expected_data() -> set[str]:
    """What the app reads, relative to the data root (written out here, not taken from vbg_app.resources)."""
    files = {"models/connectnet.onnx", "models/connectnet_256x144.onnx", "models/selfie_segmentation.tflite",
             "models/LICENSES.md", "models/LICENSE-mediapipe.txt", "models/README.md",
             "assets/backgrounds/LICENSES.md", "assets/demo/astronaut.png", "assets/demo/astronaut_gt.json",
             "assets/demo/LICENSE.md"}
    files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "assets" / "backgrounds").glob("*.jpg")}
    for f in files:
        assert (ROOT / f).is_file(), f
    return files


def expected_configs() -> set[str]:
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vbg_app" / "train" / "configs").glob("*.yaml")}
    assert "vbg_app/train/configs/connectnet_v1.yaml" in files
    return files


def build_flags() -> list[str]:
    try:
        import setuptools
        if int(setuptools.__version__.split(".")[0]) >= 77:
            return ["--no-build-isolation"]
    except (ImportError, ValueError):
        pass
    return []


def pip(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"pip {' '.join(args)}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def wheel_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        return set(z.namelist())


STALE = "_moved_away_since_the_last_build.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> dict:
    """{"path": the .whl built by ``pip wheel --no-deps .``, "log": pip -v's output (the backend's warnings)}."""
    out = tmp_path_factory.mktemp("wheel")
    # a module an earlier build left in the build folder (since moved or deleted in the tree): not shipped
    stale = ROOT / "build" / "lib" / "vbg_app" / STALE
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("raise ImportError('a stale copy from an earlier build')\n")
    res = pip("wheel", "--no-deps", "-v", *build_flags(), "-w", str(out), str(ROOT))
    (whl,) = out.glob("vbg-*.whl")
    return {"path": whl, "log": res.stdout + res.stderr}


def make_venv(where: Path) -> dict:
    """A venv without pip; {"dir", "python", "site"}."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return {"dir": where, "python": python, "site": Path(site)}


def lend_outer_packages(venv: dict) -> None:
    """Append this interpreter's site-packages (numpy, cv2, onnxruntime, ...) to the venv's sys.path."""
    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    # (they may lie inside the checkout, e.g. ./.venv: what matters is that the checkout itself is not on it)
    assert not any(Path(p) == ROOT or (Path(p) / "vbg_app" / "resources.py").is_file() and
                   (Path(p) / "vbg_app").resolve() == (ROOT / "vbg_app") for p in paths), paths
    (venv["site"] / "zz_vbg_test_outer_site.pth").write_text("".join(f"{p}\n" for p in sorted(paths)))


def clean_env(venv: dict, home: Path) -> dict:
    """A user's shell with the venv on PATH: no PYTHONPATH, HOME outside the source tree."""
    return {"PATH": f"{venv['dir'] / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """The wheel installed (``--no-deps``) into a fresh venv; {"dir", "python", "site", "home", "env"}."""
    base = tmp_path_factory.mktemp("installed")
    venv = make_venv(base / "venv")
    pip("--python", str(venv["python"]), "install", "--no-deps", "--no-index", str(wheel["path"]))
    lend_outer_packages(venv)
    home = base / "home"
    home.mkdir()
    venv.update(home=home, env=clean_env(venv, home))
    return venv


def test_wheel_carries_the_data_and_the_configs(wheel):
    names = wheel_names(wheel["path"])
    for f in sorted(expected_data()):
        assert DATA + f in names, f
    for f in sorted(expected_configs()):
        assert f in names, f
    assert not [n for n in names if n.startswith(DATA) and n[len(DATA):] not in expected_data()]
    assert not [n for n in names if n.startswith(("models/", "assets/"))]  # inside the package only
    assert wheel["path"].stat().st_size < 20 * 2**20


def test_wheel_license_metadata_without_deprecation_warnings(wheel):
    with zipfile.ZipFile(wheel["path"]) as z:
        meta = z.read("vbg-0.1.0.dist-info/METADATA").decode()
        names = set(z.namelist())
    assert "License-Expression: Apache-2.0" in meta
    assert not re.search(r"^License: ", meta, re.M)  # the deprecated free-text field
    for notice in ("models/LICENSES.md", "models/LICENSE-mediapipe.txt", "assets/backgrounds/LICENSES.md",
                   "assets/demo/LICENSE.md"):
        assert f"License-File: {notice}" in meta and f"vbg-0.1.0.dist-info/licenses/{notice}" in names
    warned = [line for line in wheel["log"].splitlines() if "Warning" in line and "deprecat" in line.lower()]
    assert not warned, warned


def test_wheel_carries_only_the_trees_modules(wheel):
    names = wheel_names(wheel["path"])
    assert f"vbg_app/{STALE}" not in names
    tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vbg_app").rglob("*.py") if "_data" not in p.parts}
    assert {n for n in names if n.endswith(".py")} == tree


def test_wheel_built_from_the_sdist_is_the_same(wheel, tmp_path):
    """``python -m build`` makes the sdist first and the wheel from it: MANIFEST.in must carry the data."""
    if not build_flags():
        pytest.skip("needs setuptools>=77 in the test environment")
    sdist_dir, wheel_dir = tmp_path / "sdist", tmp_path / "wheel"
    res = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                          "print(b.build_sdist(sys.argv[1]))", str(sdist_dir)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    (sdist,) = sdist_dir.glob("vbg-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for f in expected_data() | expected_configs() | {"setup.py", "MANIFEST.in", "pyproject.toml"}:
        assert f in members, f
    pip("wheel", "--no-deps", *build_flags(), "-w", str(wheel_dir), str(sdist))
    (from_sdist,) = wheel_dir.glob("vbg-*.whl")
    assert wheel_names(from_sdist) == wheel_names(wheel["path"])


def test_installed_package_finds_its_data_in_site_packages(installed):
    code = ("import json, sys, vbg_app; from vbg_app import resources as r; print(json.dumps({"
            "'pkg': vbg_app.__file__, 'root': str(r.root()), 'model': str(r.model_path()), "
            "'mediapipe': str(r.model_path(r.MEDIAPIPE_MODEL)), 'bg': str(r.asset_path('backgrounds')), "
            "'demo': str(r.asset_path('demo', 'astronaut.png')), 'path': sys.path}))")
    res = subprocess.run([str(installed["python"]), "-c", code], cwd=installed["home"], env=installed["env"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout)
    site = installed["site"]
    assert Path(got["pkg"]).parent == site / "vbg_app"
    assert Path(got["root"]) == site / "vbg_app" / "_data"
    for key in ("model", "mediapipe", "bg", "demo"):
        path = Path(got[key])
        assert site in path.parents and ROOT not in path.parents, (key, path)
        assert path.exists(), path
    assert sorted(p.name for p in Path(got["bg"]).glob("*.jpg")) == \
        sorted(p.name for p in (ROOT / "assets" / "backgrounds").glob("*.jpg"))
    assert str(ROOT) not in got["path"], got["path"]  # ("" is the cwd, a folder outside the tree)
    configs = site / "vbg_app" / "train" / "configs"
    assert sorted(p.name for p in configs.glob("*.yaml")) == sorted(Path(f).name for f in expected_configs())


def test_installed_vbg_runs_outside_the_source_tree(installed):
    env, home, vbg = installed["env"], installed["home"], installed["dir"] / "bin" / "vbg"
    # the shipped model and demo portrait (a wheel without them: "error: model file ... not found", exit 2)
    res = subprocess.run([str(vbg), "run", "--source", "demo", "--frames", "2", "--sink", "null"], cwd=home,
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "vbg: 2 frames" in res.stderr, res.stderr[-3000:]
    # and a shipped background, into a file
    bg = installed["site"] / "vbg_app" / "_data" / "assets" / "backgrounds" / "hills.jpg"
    res = subprocess.run([str(vbg), "run", "--source", "demo", "--frames", "5", "--sink", "file:out.mp4",
                          "--background", f"image:{bg}"], cwd=home, env=env, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    out = home / "out.mp4"
    assert out.is_file() and out.stat().st_size > 0
    import cv2
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame is not None and frame.std() > 5


def test_editable_install_reads_the_source_tree(tmp_path):
    """``pip install -e .`` copies nothing: vbg_app is imported from the checkout, the data from its top level."""
    venv = make_venv(tmp_path / "venv")
    lend_outer_packages(venv)  # pip --python builds with the venv's interpreter: setuptools comes from here
    pip("--python", str(venv["python"]), "install", "--no-deps", "--no-index", *build_flags(), "-e", str(ROOT))
    code = "from vbg_app import resources as r; print(r.root()); print(r.model_path())"
    res = subprocess.run([str(venv["python"]), "-c", code], cwd=tmp_path, env=clean_env(venv, tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    root, model = res.stdout.split()
    assert Path(root) == ROOT and Path(model) == ROOT / "models" / "connectnet.onnx"
    assert not (ROOT / "vbg_app" / "_data").exists()

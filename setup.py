"""Build step that puts vbg's data into the wheel; everything else is in pyproject.toml.

The top-level ``models/`` and ``assets/`` folders are the only copy of the shipped files. A regular build
(``pip wheel .``, ``pip install .``, ``python -m build``) copies the files listed in
``vbg_app.resources.SHIPPED`` to ``vbg_app/_data/`` in the build folder, so the installed package carries
them and ``vbg_app.resources.root()`` finds them there. An editable install (``pip install -e .``) copies
nothing: it imports ``vbg_app`` from the checkout, where ``root()`` finds the top-level folders.
MANIFEST.in puts the same files into the sdist, so a wheel built from the sdist carries them too.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _resources():
    """vbg_app/resources.py loaded by path (standard library only; vbg_app itself is not imported)."""
    spec = importlib.util.spec_from_file_location("_vbg_resources", HERE / "vbg_app" / "resources.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def shipped_files() -> list[str]:
    """The data files a release carries, relative to the source tree (posix paths, sorted)."""
    res = _resources()
    files = sorted({p.relative_to(HERE).as_posix() for pattern in res.SHIPPED for p in HERE.glob(pattern)
                    if p.is_file()})
    if f"models/{res.DEFAULT_MODEL}" not in files:
        raise SystemExit(f"setup.py: models/{res.DEFAULT_MODEL} is missing from {HERE}; the package would not start")
    return files


class BuildPyWithData(build_py):
    """build_py, plus models/ and assets/ copied to vbg_app/_data/ (not for editable installs)."""

    def _data_dir(self) -> Path:
        return Path(self.build_lib) / "vbg_app" / _resources().WHEEL_DATA

    def run(self) -> None:
        stale = Path(self.build_lib) / "vbg_app"
        if not self.editable_mode and stale.exists():
            # a build folder reused from an earlier build keeps modules moved or deleted since (build_py only
            # adds and overwrites), and the wheel would ship them: start from the tree as it is now
            shutil.rmtree(stale)
        super().run()
        if self.editable_mode:
            return
        dest = self._data_dir()
        if dest.exists():  # a build folder reused from an earlier build: no stale files
            shutil.rmtree(dest)
        for rel in shipped_files():
            target = dest / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(HERE / rel), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs += [str(self._data_dir() / rel) for rel in shipped_files()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithData})

"""Where the shipped files (models, backgrounds, the demo portrait) live.

The data root is the folder that holds ``models/`` and ``assets/``; it is, in this order:

1. a PyInstaller bundle: ``sys._MEIPASS`` (``_internal/``; packaging/vbg.spec copies the files there);
2. an installed wheel: ``vbg_app/_data/`` inside the package (setup.py's ``build_py`` copies the top-level
   ``models/`` and ``assets/`` there when it builds a wheel);
3. the source tree: the folder above ``vbg_app/`` (a checkout, or an editable ``pip install -e .``, which
   imports the package from the checkout).

The top-level ``models/`` and ``assets/`` folders of the source tree are the only copy under version control.
This module uses the standard library only: setup.py and the spec load it by path for :data:`SHIPPED`.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
WHEEL_DATA = "_data"  # vbg_app/_data/{models,assets} in an installed wheel

# What a release carries, relative to the data root; the wheel (setup.py) and the bundle (packaging/vbg.spec)
# ship exactly these files. assets/backgrounds/generate.py stays in the source tree.
SHIPPED = ("models/*.onnx", "models/*.tflite", "models/LICENSE*", "models/README.md",
           "assets/backgrounds/*.jpg", "assets/backgrounds/LICENSES.md", "assets/demo/*.png", "assets/demo/*.json",
           "assets/demo/LICENSE.md")

DEFAULT_MODEL = "connectnet.onnx"
MEDIAPIPE_MODEL = "selfie_segmentation.tflite"


def candidates() -> list[Path]:
    """The folders :func:`root` looks in, first match wins."""
    found = []
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller one-folder bundle
    if bundle:
        found.append(Path(bundle))
    found.append(PACKAGE_DIR / WHEEL_DATA)
    found.append(PACKAGE_DIR.parent)
    return found


def holds_data(folder: Path) -> bool:
    return (folder / "models").is_dir() and (folder / "assets").is_dir()


def root() -> Path:
    """The folder that holds ``models/`` and ``assets/``.

    Raises :class:`~vbg_app.errors.BadInput` (exit code 2) naming the folders it looked in when none does: an
    installation without its data (e.g. a wheel built without setup.py's data step).
    """
    looked = candidates()
    for folder in looked:
        if holds_data(folder):
            return folder
    from vbg_app.errors import BadInput

    raise BadInput("vbg's data files (models/ and assets/) are not installed: looked in "
                   + ", ".join(str(p) for p in looked),
                   "reinstall vbg from a wheel built by its setup.py (pip install vbg, or pip install . in a "
                   "checkout), or run it from a source checkout")


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """A shipped model's path (it may not exist: callers say "not found" with the path)."""
    return root() / "models" / name


def asset_path(*parts: str) -> Path:
    """A path under the shipped ``assets/`` (e.g. ``asset_path("backgrounds")``)."""
    return root().joinpath("assets", *parts)


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read 1 MiB at a time (``hashlib.file_digest`` is Python 3.11+)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

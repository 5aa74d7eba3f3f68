"""Where the shipped files live: the source tree, an installed wheel's data, or a PyInstaller bundle."""
from __future__ import annotations

import sys
from pathlib import Path


def root() -> Path:
    """The folder that holds ``models/`` and ``assets/``."""
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller one-folder bundle
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def model_path(name: str = "connectnet.onnx") -> Path:
    return root() / "models" / name


def asset_path(*parts: str) -> Path:
    return root().joinpath("assets", *parts)


DEFAULT_MODEL = "connectnet.onnx"
MEDIAPIPE_MODEL = "selfie_segmentation.tflite"

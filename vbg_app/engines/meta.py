"""The ``vbg.*`` metadata contract that makes a segmentation ONNX file self-describing.

A model the app can run carries these keys in its ONNX ``metadata_props``::

    vbg.input_size_wh  JSON [W, H]            e.g. "[398, 224]"
    vbg.layout         "NCHW" or "NHWC"
    vbg.color          "RGB" or "BGR"
    vbg.mean, vbg.std  JSON, 3 floats on the 0..1 scale: x = (pixel/255 - mean) / std
    vbg.output         "softmax2" ([1,2,H,W], channel 1 = person) or "prob1" ([1,1,H,W] / [1,H,W,1])
    vbg.fit            optional: "stretch" (default), "letterbox" or "aspect" (input of the frame's aspect at
                       about the nominal pixel count; needs a dynamic H and W), how frames of another aspect
                       are fitted into the input (vbg_app/engines/fit.py)
    vbg.name, vbg.version, vbg.source   free text (provenance)

This module has no heavy imports: it parses a ``{key: str}`` mapping (from
``onnxruntime.InferenceSession.get_modelmeta().custom_metadata_map`` or from ``onnx``) into
:class:`ModelMeta`, and raises :class:`~vbg_app.errors.BadInput` with the fix when a key is missing
or malformed.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping

from vbg_app.errors import BadInput
from vbg_app.engines.fit import FITS

REQUIRED_KEYS = (
    "vbg.input_size_wh",
    "vbg.layout",
    "vbg.color",
    "vbg.mean",
    "vbg.std",
    "vbg.output",
)
PROVENANCE_KEYS = ("vbg.name", "vbg.version", "vbg.source")
OPTIONAL_KEYS = ("vbg.fit",)
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
OUTPUTS = ("softmax2", "prob1")


@dataclass(frozen=True)
class ModelMeta:
    input_size_wh: tuple[int, int]
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    output: str = "softmax2"
    fit: str = "stretch"
    name: str = ""
    version: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def to_props(self) -> dict[str, str]:
        """The ``{key: str}`` mapping to write into an ONNX file's metadata."""
        return {
            "vbg.input_size_wh": json.dumps(list(self.input_size_wh)),
            "vbg.layout": self.layout,
            "vbg.color": self.color,
            "vbg.mean": json.dumps(list(self.mean)),
            "vbg.std": json.dumps(list(self.std)),
            "vbg.output": self.output,
            "vbg.fit": self.fit,
            "vbg.name": self.name,
            "vbg.version": self.version,
            "vbg.source": self.source,
        }


MAX_INPUT_SIDE = 4096     # the model's input, per side: 4096x4096x3 float32 is 200 MB, a size no camera app needs
MEAN_RANGE = (-10.0, 10.0)  # on the 0..1 pixel scale; real models use 0..1
STD_RANGE = (1e-4, 100.0)   # 1/255 (a model fed 0..255 pixels) is 0.0039; real models use 0.003..1
_FIX = "re-export the model with `vbg export` or fix the key with onnx.helper"


def _json_floats(props: Mapping[str, str], key: str, n: int, where: str) -> tuple:
    """``n`` finite JSON numbers (Python's json reads NaN and Infinity, and true as a number: all refused)."""
    try:
        value = json.loads(props[key])
        if not (isinstance(value, list) and len(value) == n
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
            raise ValueError
    except (ValueError, TypeError, RecursionError):
        raise BadInput(f"{where}: metadata key {key} is {props[key][:80]!r}, expected a JSON list of {n} finite "
                       "numbers", _FIX) from None
    return tuple(value)


def _in_range(key: str, values, lo: float, hi: float, where: str, what: str) -> None:
    if not all(lo <= v <= hi for v in values):
        raise BadInput(f"{where}: metadata key {key} is {list(values)}, {what} must be within {lo:g}..{hi:g}", _FIX)


def parse_meta(props: Mapping[str, str], where: str = "model") -> ModelMeta:
    """Parse and validate ``vbg.*`` metadata; ``where`` names the file in error messages."""
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise BadInput(
            f"{where} has no vbg metadata (missing {', '.join(missing)}), so its input size and "
            "normalisation are unknown",
            "use models/connectnet.onnx or a model exported by `vbg export`; for another model add the "
            "vbg.* keys described in models/README.md",
        )
    w, h = _json_floats(props, "vbg.input_size_wh", 2, where)
    if int(w) != w or int(h) != h or w < 8 or h < 8:
        raise BadInput(f"{where}: vbg.input_size_wh {props['vbg.input_size_wh']} is not a pair of sizes >= 8",
                       "set it to the model's input [width, height]")
    if w > MAX_INPUT_SIDE or h > MAX_INPUT_SIDE:  # refused before any buffer of that size is allocated
        raise BadInput(f"{where}: vbg.input_size_wh {[int(w), int(h)]} is over {MAX_INPUT_SIDE} pixels per side, "
                       f"the most vbg runs", "export the model at a camera-sized input, e.g. [398, 224]")
    for key, allowed in (("vbg.layout", LAYOUTS), ("vbg.color", COLORS), ("vbg.output", OUTPUTS)):
        if props[key] not in allowed:
            raise BadInput(f"{where}: {key} is {props[key]!r}", f"use one of {', '.join(allowed)}")
    fit = props.get("vbg.fit", "stretch")
    if fit not in FITS:
        raise BadInput(f"{where}: vbg.fit is {fit!r}", f"use one of {', '.join(FITS)}")
    mean = _json_floats(props, "vbg.mean", 3, where)
    std = _json_floats(props, "vbg.std", 3, where)
    if any(s <= 0 for s in std):
        raise BadInput(f"{where}: vbg.std {list(std)} has a non-positive value", "use positive std values")
    _in_range("vbg.mean", mean, *MEAN_RANGE, where, "each mean (on the 0..1 pixel scale)")
    _in_range("vbg.std", std, *STD_RANGE, where, "each std (on the 0..1 pixel scale)")
    return ModelMeta(
        input_size_wh=(int(w), int(h)),
        layout=props["vbg.layout"],
        color=props["vbg.color"],
        mean=mean,
        std=std,
        output=props["vbg.output"],
        fit=fit,
        name=props.get("vbg.name", ""),
        version=props.get("vbg.version", ""),
        source=props.get("vbg.source", ""),
        extra={k: v for k, v in props.items() if k not in REQUIRED_KEYS + PROVENANCE_KEYS + OPTIONAL_KEYS},
    )

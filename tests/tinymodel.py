"""Tiny ONNX segmentation models made with onnx.helper, so tests need neither ../shared nor torch.

``make_model(path, size_wh=(32, 16))`` writes a model whose person probability is a known function of
the input: softmax over [0, k * (R - B)] on the normalised RGB input, i.e. red pixels are "person".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vbg_app.engines.meta import ModelMeta


def make_model(path: Path, size_wh=(32, 16), meta: bool = True, layout_rank: int = 4, opset: int = 17,
               props: dict | None = None, dynamic: bool = False) -> Path:
    """``dynamic``: height and width are the named free dimensions "height" and "width" (a vbg.fit = aspect
    model); ``size_wh`` is then only the nominal size in the metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, h = size_wh
    # 1x1 conv 3 -> 2: channel 0 = 0, channel 1 = 8 * (R - B)   (input is RGB, NCHW)
    weight = np.zeros((2, 3, 1, 1), np.float32)
    weight[1, 0, 0, 0] = 8.0
    weight[1, 2, 0, 0] = -8.0
    dh, dw = ("height", "width") if dynamic else (h, w)
    shape = [1, 3, dh, dw] if layout_rank == 4 else [3, dh, dw]
    nodes = [helper.make_node("Conv", ["x" if layout_rank == 4 else "x4", "W"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["prob"], axis=1)]
    inits = [numpy_helper.from_array(weight, "W")]
    if layout_rank != 4:  # a rank-3 input the app must refuse
        nodes.insert(0, helper.make_node("Unsqueeze", ["x", "axes"], ["x4"]))
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "axes"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 2, dh, dw])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if meta:
        entries = ModelMeta(input_size_wh=(w, h), name="tiny", version="test", source="tests").to_props()
        entries.update(props or {})
        onnx.helper.set_model_props(model, entries)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def red_person_frame(h=120, w=200):
    """A BGR frame: blue background, a red rectangle (the "person") in the middle; and its mask."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = (200, 60, 0)  # blue-ish
    mask = np.zeros((h, w), bool)
    mask[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = True
    frame[mask] = (0, 40, 220)  # red
    return frame, mask

"""Static int8 quantization (QDQ) of a vbg segmentation model, calibrated on a folder of photos.

    vbg quantize --model models/connectnet.onnx --calib ../shared/data/portraits/ccp/train/images \\
                 --out models/connectnet_int8.onnx
    python -m vbg_app.quantize ...      # the same without the CLI wiring

The copy keeps every ``vbg.*`` metadata key (so the app and ``vbg eval`` run it like the original), marks
``vbg.name`` with `` int8`` and records how it was made in ``vbg.quantization``. Weights are int8
(per output channel unless ``--per-tensor``), activations uint8 with scales from the calibration images, in
QDQ form (QuantizeLinear/DequantizeLinear pairs), which onnxruntime's CPU provider fuses into int8 kernels
(fast with AVX-512 VNNI / AVX-VNNI / ARM dot-product instructions; on older x86 CPUs int8 can be slower).

Calibration images go through exactly the preprocessing the app uses (``OnnxSegmenter.preprocess``:
resize to the model's input size, normalise with its mean/std), so the ranges match what the model sees.
Calibrate on photos that are *not* the ones you then evaluate on (e.g. a train split), 100-300 are plenty.
Check the quality with ``vbg eval --model ORIGINAL --model INT8 --data ...`` and the speed with
``vbg bench --model ORIGINAL --model INT8``.

``--exclude-tail`` (default on) keeps the last ``Resize``/``Softmax`` nodes in float: the logits' final
upsampling decides the mask edge, and costs little.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, VbgError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
METHODS = ("minmax", "percentile", "entropy")


def calibration_images(folders: list[str], limit: int | None, seed: int = 0) -> list[Path]:
    """Image files of the folders (``DIR`` or ``DIR/images``), a seeded random pick of ``limit`` of them."""
    files: list[Path] = []
    for folder in folders:
        d = Path(folder).expanduser()
        if (d / "images").is_dir():
            d = d / "images"
        if not d.is_dir():
            raise BadInput(f"calibration folder {folder} does not exist", "give a folder of photos with --calib")
        files += sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise BadInput(f"no images (.jpg/.png) in {', '.join(folders)}", "give a folder of photos of people with --calib")
    if limit and len(files) > limit:
        idx = np.random.default_rng(seed).choice(len(files), limit, replace=False)
        files = [files[i] for i in sorted(idx)]
    return files


class _Reader:
    """onnxruntime CalibrationDataReader: one preprocessed input tensor per calibration image."""

    def __init__(self, segmenter, input_name: str, files: list[Path]) -> None:
        self.seg, self.name, self.files, self.i, self.used = segmenter, input_name, files, 0, 0

    def get_next(self):
        while self.i < len(self.files):
            path = self.files[self.i]
            self.i += 1
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                continue  # an unreadable file: skip it
            self.used += 1
            return {self.name: self.seg.preprocess(img).copy()}
        return None

    def rewind(self) -> None:
        self.i = 0


def quantize(model: str, calib: list[str], out: str, limit: int | None = 200, per_channel: bool = True,
             method: str = "minmax", exclude_tail: bool = True, preprocess: bool = True,
             source_name: str | None = None) -> dict:
    """Write a static-QDQ int8 copy of ``model`` to ``out``; returns a summary dict."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from vbg_app.engines.onnx_engine import OnnxSegmenter

    if method not in METHODS:
        raise BadInput(f"unknown calibration method {method!r}", f"use one of {', '.join(METHODS)}")
    src = Path(model).expanduser()
    seg = OnnxSegmenter(src, provider="cpu")  # validates the file and its vbg metadata; gives the preprocessing
    files = calibration_images(calib, limit)
    out_path = Path(out).expanduser()
    if not out_path.parent.is_dir():
        raise BadInput(f"--out {out}: its folder does not exist", "create it or choose another path")
    if out_path.resolve() == src.resolve():
        raise BadInput("--out is the input model", "write the int8 copy to another file")
    original = onnx.load(str(src))
    props = {p.key: p.value for p in original.metadata_props}
    with tempfile.TemporaryDirectory(prefix="vbg-quant-") as tmp:
        to_quantize = str(src)
        opset = max((o.version for o in original.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if opset < 13:  # per-channel QDQ (DequantizeLinear with an axis) needs opset 13
            from onnx import version_converter
            to_quantize = str(Path(tmp) / "opset13.onnx")
            onnx.save(version_converter.convert_version(original, 13), to_quantize)
        if preprocess:  # shape inference + graph optimisation: what onnxruntime recommends before quantizing
            from onnxruntime.quantization.shape_inference import quant_pre_process
            pre = str(Path(tmp) / "pre.onnx")
            quant_pre_process(to_quantize, pre, skip_symbolic_shape=True)
            to_quantize = pre
        graph = onnx.load(to_quantize).graph
        exclude = []
        if exclude_tail:  # the nodes after the last Conv (upsampling of the logits, softmax) stay float
            last_conv = max((i for i, n in enumerate(graph.node) if n.op_type == "Conv"), default=-1)
            exclude = [n.name for n in graph.node[last_conv + 1:] if n.name]
        reader = _Reader(seg, seg._session.get_inputs()[0].name, files)
        quantize_static(
            to_quantize, str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    seg.close()
    note = (f"static QDQ int8 (onnxruntime {__import__('onnxruntime').__version__}): weights int8 "
            f"{'per channel' if per_channel else 'per tensor'}, activations uint8 {method}-calibrated on "
            f"{reader.used} images of {', '.join(calib)}" + (f"; float tail: {', '.join(exclude)}" if exclude else ""))
    q = onnx.load(str(out_path))
    props.update({"vbg.name": (props.get("vbg.name", "") + " int8").strip(), "vbg.quantization": note,
                  "vbg.source": (props.get("vbg.source", "") + f"; quantized from {source_name or src.name}").lstrip("; ")})
    del q.metadata_props[:]
    onnx.helper.set_model_props(q, props)
    onnx.save(q, str(out_path))
    OnnxSegmenter(out_path, provider="cpu").close()  # the copy must load, with its metadata, before we say done
    return {"model": str(src), "out": str(out_path), "images": reader.used, "note": note,
            "size_kb": [round(src.stat().st_size / 1024), round(out_path.stat().st_size / 1024)]}


def _tail_chain(graph):
    """The nodes from the last ``Resize`` to the graph output if they are only Resize → (Transpose) → Softmax over
    the channels → (Transpose), in forward order; None when the tail is anything else."""
    producer = {o: n for n in graph.node for o in n.output}
    chain, name = [], graph.output[0].name
    while name in producer:
        node = producer[name]
        if node.op_type not in ("Transpose", "Softmax", "Resize", "Identity"):
            return None
        chain.append(node)
        if node.op_type == "Resize":
            break
        name = node.input[0]
    chain.reverse()
    if not chain or chain[0].op_type != "Resize" or [n.op_type for n in chain].count("Softmax") != 1 \
            or [n.op_type for n in chain].count("Resize") != 1:
        return None
    order = [0, 1, 2, 3]  # order[i] = the Resize output's axis that axis i now holds
    for node in chain[1:]:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Transpose":
            perm = list(attrs["perm"].ints) if "perm" in attrs else [3, 2, 1, 0]
            order = [order[i] for i in perm]
        elif node.op_type == "Softmax":
            axis = attrs["axis"].i if "axis" in attrs else -1
            if order[axis % 4] != 1:
                return None  # not a softmax over the channels
    return chain if order == [0, 1, 2, 3] else None


def trim_tail(model: str, out: str, check_images: list[Path] | None = None) -> dict:
    """Write a copy of ``model`` whose output skips the final upsampling: softmax at the decoder's resolution.

    ConnectNet (and many segmenters) end with ``Resize`` (x2 or more, bilinear) of the 2-channel logits and a
    ``Softmax``: a fifth of the model's CPU time spent at the full input resolution, only for the app to
    upsample the mask once more (edge-aware) to the frame. The copy outputs ``[1, 2, h, w]`` softmax at the
    decoder's resolution instead; the app runs it unchanged (``vbg.output`` stays ``softmax2``), and its
    temporal filter and compositor work on the smaller mask, which makes them cheaper as well. The result is
    checked against the original on ``check_images`` (bilinear upsampling of the new output must agree).
    """
    import onnx
    from onnx import helper

    from vbg_app.engines.onnx_engine import OnnxSegmenter

    src = Path(model).expanduser()
    seg = OnnxSegmenter(src, provider="cpu")
    if seg.meta.output != "softmax2" or seg.meta.layout != "NCHW":
        raise BadInput(f"{src.name}: only NCHW softmax2 models can have their tail trimmed",
                       "leave out --trim-tail for this model")
    m = onnx.load(str(src))
    chain = _tail_chain(m.graph)
    if chain is None:
        raise BadInput(f"{src.name} does not end with Resize → Softmax over the channels",
                       "leave out --trim-tail for this model")
    low = chain[0].input[0]
    dead = {id(n) for n in chain}
    keep = [n for n in m.graph.node if id(n) not in dead]
    out_name = m.graph.output[0].name
    # softmax over the channels as NHWC softmax on the last axis: the same in every opset (before opset 13
    # Softmax(axis=1) would normalise over C*H*W)
    keep += [helper.make_node("Transpose", [low], ["vbg_tail_nhwc"], perm=[0, 2, 3, 1], name="vbg_tail_to_nhwc"),
             helper.make_node("Softmax", ["vbg_tail_nhwc"], ["vbg_tail_soft"], axis=-1, name="vbg_tail_softmax"),
             helper.make_node("Transpose", ["vbg_tail_soft"], [out_name], perm=[0, 3, 1, 2], name="vbg_tail_to_nchw")]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    used = {i for n in m.graph.node for i in n.input}
    inits = [t for t in m.graph.initializer if t.name in used]  # the Resize's sizes/scales constants
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    del m.graph.output[0].type.tensor_type.shape.dim[:]
    m.graph.output[0].type.tensor_type.shape.dim.extend(
        [onnx.TensorShapeProto.Dimension(dim_param=p) for p in ("n", "c", "h", "w")])
    props = {p.key: p.value for p in m.metadata_props}
    props["vbg.tail"] = f"final {chain[0].name} (bilinear upsampling of the logits) removed by vbg quantize --trim-tail"
    del m.metadata_props[:]
    helper.set_model_props(m, props)
    out_path = Path(out).expanduser()
    onnx.save(m, str(out_path))
    trimmed = OnnxSegmenter(out_path, provider="cpu")
    agree, worst = [], 0.0
    for path in (check_images or [])[:20]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        a = seg.segment(img)
        b = cv2.resize(trimmed.segment(img), (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        agree.append(float(((a > 0.5) == (b > 0.5)).mean()))
        worst = max(worst, float(np.abs(a - b).mean()))
    seg.close()
    trimmed.close()
    if agree and (min(agree) < 0.97 or worst > 0.05):
        out_path.unlink()
        raise BadInput(f"trimming the tail of {src.name} changed its masks (agreement {min(agree):.3f}, "
                       f"mean |diff| {worst:.3f})", "leave out --trim-tail for this model")
    return {"out": str(out_path), "removed": [n.name or n.op_type for n in chain],
            "agreement": min(agree) if agree else None, "mean_abs_diff": worst if agree else None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="ONNX model with vbg.* metadata to quantize")
    parser.add_argument("--out", required=True, help="where to write the new model")
    parser.add_argument("--calib", action="append", default=[], metavar="DIR",
                        help="folder of photos (or a folder with images/) for calibration (repeatable; needed for "
                             "int8, used as a check by --trim-tail)")
    parser.add_argument("--limit", type=int, default=200, help="at most this many calibration images (default 200)")
    parser.add_argument("--method", default="minmax", choices=METHODS, help="activation range calibration (default minmax)")
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor instead of per channel")
    parser.add_argument("--quantize-tail", action="store_true",
                        help="also quantize the nodes after the last Conv (logit upsampling, softmax)")
    parser.add_argument("--no-preprocess", action="store_true", help="skip onnxruntime's quant_pre_process")
    parser.add_argument("--trim-tail", action="store_true",
                        help="first drop the final upsampling of the logits: the model outputs its mask at the "
                             "decoder's resolution (checked against the original on the --calib images)")
    parser.add_argument("--no-int8", action="store_true", help="only --trim-tail, keep float32 weights")


def run(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise BadInput(f"--limit {args.limit} must be at least 1", "try --limit 200")
    if args.no_int8 and not args.trim_tail:
        raise BadInput("--no-int8 without --trim-tail leaves nothing to do", "add --trim-tail or leave out --no-int8")
    if not args.no_int8 and not args.calib:
        raise BadInput("int8 quantization needs calibration photos", "give a folder of photos with --calib DIR")
    model = args.model
    with tempfile.TemporaryDirectory(prefix="vbg-trim-") as tmp:
        if args.trim_tail:
            check = calibration_images(args.calib, 20) if args.calib else None
            target = args.out if args.no_int8 else str(Path(tmp) / "trimmed.onnx")
            t = trim_tail(model, target, check)
            agree = f", masks agree on {100 * t['agreement']:.2f}% of pixels" if t["agreement"] is not None else ""
            print(f"trimmed {', '.join(t['removed'])}{agree}")
            model = target
            if args.no_int8:
                print(f"wrote {args.out}")
                return 0
        info = quantize(model, args.calib, args.out, limit=args.limit, per_channel=not args.per_tensor,
                        method=args.method, exclude_tail=not args.quantize_tail, preprocess=not args.no_preprocess,
                        source_name=Path(args.model).name + (" (tail trimmed)" if args.trim_tail else ""))
    print(f"wrote {info['out']} ({info['size_kb'][0]} KiB -> {info['size_kb'][1]} KiB): {info['note']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vbg quantize", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except VbgError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())

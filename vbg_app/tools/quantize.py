"""Static int8 quantization (QDQ) of a vbg segmentation model, calibrated on a folder of photos.

    vbg quantize --model models/connectnet.onnx --calib ../shared/data/portraits/ccp/train/images \\
                 --out models/connectnet_int8.onnx
    python -m vbg_app.tools.quantize ...      # the same without the CLI wiring

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
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, run_command
from vbg_app.imagefile import IMAGE_EXTS

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


# ops that work pixel by pixel (or across the channels of one pixel): moving a Resize past them changes little
PER_PIXEL_OPS = {"Transpose", "Softmax", "Sigmoid", "Concat", "Neg", "Identity", "Relu", "Clip", "Cast", "Add", "Sub",
                 "Mul", "Div", "Slice", "Split"}


def _tail(graph):
    """(the last Resize, the per-pixel nodes after it) when everything between that Resize and the graph's
    output works pixel by pixel; None otherwise."""
    producer = {o: n for n in graph.node for o in n.output}
    consts = {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    resize, tail, todo, seen = None, [], [graph.output[0].name], set()
    while todo:
        name = todo.pop()
        if name in seen or name in consts or not name:
            continue
        seen.add(name)
        node = producer.get(name)
        if node is None:
            return None  # reached the graph input without a Resize
        if node.op_type == "Resize":
            if resize is not None and resize is not node:
                return None
            resize = node
            continue
        if node.op_type not in PER_PIXEL_OPS:
            return None
        if node not in tail:
            tail.append(node)
        todo.extend(node.input)
    return (resize, tail) if resize is not None else None


def trim_tail(model: str, out: str, check_images: list[Path] | None = None) -> dict:
    """Write a copy of ``model`` without its final upsampling: the mask comes out at the decoder's resolution.

    ConnectNet (like many segmenters) ends with a bilinear ``Resize`` x2 of its logits and a softmax at the
    full input resolution (a fifth of its CPU time), only for the app to upsample the mask once more (edge
    aware) to the frame. When everything after the last ``Resize`` works pixel by pixel (softmax over the
    channels, sigmoid, transposes, channel concat, ...), the copy skips that ``Resize``: same output tensor,
    at the decoder's resolution. The app runs it unchanged (``vbg.output`` stays as it was), and the temporal
    filter and compositor get cheaper too (smaller mask). The copy is checked against the original on
    ``check_images`` (default: built-in demo frames): the bilinearly upsampled new mask must agree.
    """
    import onnx
    from onnx import helper

    from vbg_app.engines.onnx_engine import OnnxSegmenter

    src = Path(model).expanduser()
    seg = OnnxSegmenter(src, provider="cpu")
    m = onnx.load(str(src))
    found = _tail(m.graph)
    if found is None:
        seg.close()
        raise BadInput(f"{src.name} does not end with a Resize followed only by per-pixel operations",
                       "leave out --trim-tail for this model")
    resize, tail = found
    for node in tail:
        for i, name in enumerate(node.input):
            if name == resize.output[0]:
                node.input[i] = resize.input[0]
    # drop the Resize and whatever only fed it (its sizes/scales, computed or constant)
    needed = {o.name for o in m.graph.output}
    keep = []
    for node in reversed([n for n in m.graph.node if n is not resize]):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del m.graph.node[:]
    m.graph.node.extend(keep)
    inits = [t for t in m.graph.initializer if t.name in needed]
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    for i, dim in enumerate(m.graph.output[0].type.tensor_type.shape.dim):
        if i >= 2 or seg.meta.layout == "NHWC" and i >= 1:
            dim.Clear()
            dim.dim_param = f"d{i}"
    props = {p.key: p.value for p in m.metadata_props}
    props["vbg.tail"] = f"final {resize.name or 'Resize'} (upsampling of the logits) removed by vbg quantize --trim-tail"
    del m.metadata_props[:]
    helper.set_model_props(m, props)
    out_path = Path(out).expanduser()
    onnx.save(m, str(out_path))
    if not check_images:
        from vbg_app.sources import DemoSource
        demo = DemoSource(1280, 720, realtime=False)
        frames = [demo.frame_at(k * 15) for k in range(6)]
    else:
        frames = [img for img in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in check_images[:20]) if img is not None]
    try:
        trimmed = OnnxSegmenter(out_path, provider="cpu")
        agree, worst, shape = [], 0.0, None
        for img in frames:
            a = seg.segment(img)
            b = trimmed.segment(img)
            shape = b.shape
            b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
            agree.append(float(((a > 0.5) == (b > 0.5)).mean()))
            worst = max(worst, float(np.abs(a - b).mean()))
        trimmed.close()
    except Exception as exc:  # the rewired graph does not run: say so rather than leave a broken file
        out_path.unlink(missing_ok=True)
        raise BadInput(f"trimming the tail of {src.name} gave a model that does not run ({str(exc)[:160]})",
                       "leave out --trim-tail for this model") from None
    finally:
        seg.close()
    if agree and (min(agree) < 0.97 or worst > 0.05):
        out_path.unlink()
        raise BadInput(f"trimming the tail of {src.name} changed its masks (agreement {min(agree):.3f}, "
                       f"mean |diff| {worst:.3f})", "leave out --trim-tail for this model")
    return {"out": str(out_path), "removed": resize.name or "Resize", "output_hw": list(shape) if shape else None,
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
            check = calibration_images(args.calib, 20) if args.calib else None  # None: demo frames
            target = args.out if args.no_int8 else str(Path(tmp) / "trimmed.onnx")
            t = trim_tail(model, target, check)
            agree = f", masks agree on {100 * t['agreement']:.2f}% of pixels" if t["agreement"] is not None else ""
            print(f"removed {t['removed']}: the mask comes out at {t['output_hw'][1]}x{t['output_hw'][0]}{agree}")
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
    return run_command("vbg quantize", (__doc__ or "").split("\n\n")[0], add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())

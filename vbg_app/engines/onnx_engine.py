"""ONNX Runtime segmenter: runs any model that carries the ``vbg.*`` metadata (see ``meta.py``).

Example::

    from vbg_app.engines.onnx_engine import OnnxSegmenter
    seg = OnnxSegmenter("models/connectnet.onnx", provider="auto", threads=2)
    prob = seg.segment(frame_bgr)      # (224, 398) float32, 1 = person
    print(seg.provider)                # the provider that really runs, e.g. "cpu" or "cuda"

Provider choice ``auto|cpu|cuda|tensorrt|directml|coreml|openvino``. onnxruntime silently falls back to
the CPU when a GPU provider cannot load (missing CUDA/cuDNN libraries, say), so after creating the session
we read ``session.get_providers()`` to learn which provider actually took, and say so in ``provider`` and
``fallback_reason``. A GPU provider that fails while creating the session, or while running frames, is
dropped once for the CPU (``fallbacks`` = 1), never retried in a loop.

Loading runs the model once on a blank input, so a file that is damaged, unreadable or not a vbg model
(wrong metadata, inputs or outputs) is refused with :class:`BadInput` before the first frame.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from vbg_app.engines.fit import PAD_VALUE, fit_size, letterbox_box
from vbg_app.engines.meta import MAX_INPUT_SIDE, REQUIRED_KEYS, ModelMeta, parse_meta
from vbg_app.engines.onnxfile import read_header
from vbg_app.errors import BadInput, DeviceUnavailable, VbgError

log = logging.getLogger(__name__)

_REEXPORT = "use models/connectnet.onnx or re-export the model with `vbg export`"

# short name -> onnxruntime provider name
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
SHORT_NAMES = {v: k for k, v in PROVIDERS.items()}
# what `auto` tries, best first. TensorRT is left out: it compiles an engine for minutes on first use,
# which a user starting a meeting would take for a hang; ask for it with --provider tensorrt.
AUTO_ORDER = ("cuda", "directml", "coreml", "openvino")

INSTALL_HINT = {
    "cuda": "install the GPU build: pip uninstall onnxruntime && pip install 'vbg[gpu]' (needs an NVIDIA driver, "
    "CUDA 12 and cuDNN 9 libraries)",
    "tensorrt": "install onnxruntime-gpu and NVIDIA TensorRT libraries (pip install 'vbg[gpu]' tensorrt)",
    "directml": "on Windows: pip uninstall onnxruntime && pip install onnxruntime-directml",
    "coreml": "on macOS the standard onnxruntime wheel has CoreML: pip install 'vbg[cpu]'",
    "openvino": "pip uninstall onnxruntime && pip install onnxruntime-openvino",
    "cpu": "reinstall onnxruntime: pip install 'vbg[cpu]'",
}


def _ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl+C cut its C initialisation short (pybind11)
            raise KeyboardInterrupt from None
        import importlib.util

        try:
            installed = importlib.util.find_spec("onnxruntime") is not None
        except (ImportError, ValueError):
            installed = True
        if not installed:
            raise BadInput("onnxruntime is not installed",
                           "install it with: pip install 'vbg[cpu]' (or 'vbg[gpu]' for NVIDIA GPUs)") from None
        why = (str(exc).strip().splitlines() or [repr(exc)])[0]
        raise BadInput(f"onnxruntime is installed but does not load ({why})",
                       "reinstall it: pip install --force-reinstall 'vbg[cpu]' (or 'vbg[gpu]')") from None
    return ort


def available_providers() -> list[str]:
    """Short names of the providers this onnxruntime build offers (offered is not the same as usable)."""
    return [SHORT_NAMES[p] for p in _ort().get_available_providers() if p in SHORT_NAMES]


def _provider_list(provider: str) -> list[str]:
    if provider not in ("auto", *PROVIDERS):
        raise BadInput(f"unknown provider {provider!r}", f"use one of auto, {', '.join(PROVIDERS)}")
    offered = available_providers()
    if provider == "auto":
        wanted = [p for p in AUTO_ORDER if p in offered]
    elif provider != "cpu" and provider not in offered:
        raise DeviceUnavailable(f"the {provider} provider is not in this onnxruntime build "
                                f"(it has: {', '.join(offered) or 'none'})", INSTALL_HINT[provider])
    else:
        wanted = [provider] if provider != "cpu" else []
    return [PROVIDERS[p] for p in wanted] + ["CPUExecutionProvider"]


class OnnxSegmenter:
    """Person segmentation with an ONNX model described by ``vbg.*`` metadata.

    Args:
        model_path: an ``.onnx`` file carrying the vbg metadata (``models/connectnet.onnx``).
        provider: ``auto`` (best installed accelerator, else CPU) or one of ``PROVIDERS``.
        threads: intra-op threads for the CPU provider; 0 = onnxruntime's default (all cores).
        strict: raise :class:`DeviceUnavailable` instead of falling back to the CPU when the requested
            accelerator does not take.
    """

    name = "connectnet"

    def __init__(self, model_path: str | os.PathLike, provider: str = "auto", threads: int = 0,
                 strict: bool = False) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise BadInput(f"model file {path} not found", "check the path, or leave out --model to use the shipped "
                           "models/connectnet.onnx")
        if threads < 0:
            raise BadInput(f"thread count {threads} is negative", "use 0 (all cores) or a positive number")
        self.path = path
        self.requested = provider
        self.strict = strict
        self.threads = threads
        self.fallback_reason = ""
        self.fallbacks = 0  # times a provider was dropped for the CPU (0 or 1: never a retry loop)
        self._precheck(path)
        ort = _ort()
        providers = _provider_list(provider)
        self._free_dims: tuple[str, str] | None = None  # names of a dynamic model's height and width
        self._sized: dict = {}  # (w, h) -> session with those dims fixed (vbg.fit = aspect)
        self._session = self._create(ort, providers)
        try:
            props = self._session.get_modelmeta().custom_metadata_map
        except Exception as exc:  # e.g. metadata that is not UTF-8 (a damaged or foreign file)
            raise BadInput(f"{path} has unreadable metadata ({type(exc).__name__})", _REEXPORT) from None
        self.meta: ModelMeta = parse_meta(props, where=str(path))
        try:
            self._check_io()
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(f"{path} has unreadable inputs or outputs ({type(exc).__name__})", _REEXPORT) from None
        took = self._session.get_providers()[0]
        if providers[0] != "CPUExecutionProvider" and took != providers[0]:
            self.fallback_reason = self.fallback_reason or (f"{SHORT_NAMES.get(providers[0], providers[0])} did not load in onnxruntime "
                                    f"and it fell back to {SHORT_NAMES.get(took, took)}")
            if strict:
                raise DeviceUnavailable(self.fallback_reason, INSTALL_HINT.get(provider, INSTALL_HINT["cuda"]))
            if provider != "auto":
                log.warning("%s; running on the CPU", self.fallback_reason)
        self.provider = SHORT_NAMES.get(took, took)
        self._providers = providers if took == providers[0] else ["CPUExecutionProvider"]
        if providers[0] != "CPUExecutionProvider" and took == "CPUExecutionProvider":
            self.fallbacks = 1
        self._prepare()
        self._check_run()
        log.info("model %s (%s, version %s) runs on %s", path.name, self.meta.name, self.meta.version, self.provider)

    # -- setup -----------------------------------------------------------------------------------------
    @staticmethod
    def _precheck(path: Path) -> None:
        """Refuse, before onnxruntime reads the file, metadata that parse_meta refuses (an input of 100000 px
        a side, NaN in vbg.mean) and fixed input dimensions over MAX_INPUT_SIDE: building a session may already
        allocate for the declared shapes (constant folding). A file this cannot parse is left to onnxruntime."""
        header = read_header(path)
        if header is None:
            return
        if all(k in header.props for k in REQUIRED_KEYS):
            parse_meta(header.props, where=str(path))
        for name, dims in header.inputs:
            big = [d for d in dims if isinstance(d, int) and d > MAX_INPUT_SIDE]
            if big:
                raise BadInput(f"{path}: input {name!r} has the shape {dims}, over {MAX_INPUT_SIDE} pixels per "
                               "side, the most vbg runs", "export the model at a camera-sized input, e.g. 398x224")

    def _create(self, ort, providers, size_wh=None):
        so = ort.SessionOptions()
        if size_wh is not None and self._free_dims:
            # a vbg.fit = aspect model at one input size: fixing the free height/width lets onnxruntime plan
            # the graph as a static one (measured: 8.5 ms instead of 12.3 ms per 400x224 frame on one core)
            for name, value in zip(self._free_dims, (size_wh[1], size_wh[0])):
                so.add_free_dimension_override_by_name(name, int(value))
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if self.threads:
            so.intra_op_num_threads = self.threads
        # idle intra-op workers would otherwise spin between frames and starve the compositing thread
        # (measured by `vbg bench --paced-fps 30`: 82 % of the machine busy with spinning, 46 % without)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3  # errors only; fallbacks are reported by us
        try:
            return ort.InferenceSession(str(self.path), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises several exception types for bad files
            text = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            if providers[0] != "CPUExecutionProvider":
                # maybe the accelerator failed while building the session: try the CPU once
                session = self._create(ort, ["CPUExecutionProvider"])
                self.fallback_reason = f"{SHORT_NAMES.get(providers[0], providers[0])} failed to start ({text})"
                log.warning("%s; running on the CPU", self.fallback_reason)
                return session
            raise BadInput(f"{self.path} is not a loadable ONNX model ({text})", _REEXPORT) from None

    def _check_run(self) -> None:
        """One inference on a blank input before the first frame: a model that cannot run, or whose output
        does not match its metadata, is refused now (BadInput) instead of failing on every frame; a GPU
        provider that fails here is dropped for the CPU, as at run time."""
        self._blob.fill(0.0)
        try:
            out = self._run(self._blob)
        except VbgError:
            raise
        except Exception as exc:
            text = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise BadInput(f"{self.path} does not run on a blank frame ({text})", _REEXPORT) from None
        if min(self._postprocess(out).shape) < 2:
            raise BadInput(f"{self.path}: output of shape {np.shape(out)} is not a person mask", _REEXPORT)

    def _check_io(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise BadInput(f"{self.path} takes {len(inputs)} input(s) of rank "
                           f"{len(inputs[0].shape) if inputs else 0}, expected one image tensor of rank 4",
                           "use a single-input segmentation model such as models/connectnet.onnx")
        w, h = self.meta.input_size_wh
        expect = [1, 3, h, w] if self.meta.layout == "NCHW" else [1, h, w, 3]
        hw_dims = [2, 3] if self.meta.layout == "NCHW" else [1, 2]
        if self.meta.fit == "aspect":
            fixed = [inputs[0].shape[i] for i in hw_dims if isinstance(inputs[0].shape[i], int) and inputs[0].shape[i] > 0]
            if fixed:
                raise BadInput(f"{self.path}: vbg.fit is aspect but the input shape {inputs[0].shape} has a fixed "
                               "height or width", "re-export it with a dynamic size (python -m vbg_app.train.export "
                               "... --fit aspect), or set vbg.fit to letterbox")
            expect = [v if i not in hw_dims else None for i, v in enumerate(expect)]
            names = [inputs[0].shape[i] for i in hw_dims]
            self._free_dims = tuple(names) if all(isinstance(n, str) and n for n in names) else None
        for got, want in zip(inputs[0].shape, expect):
            if want is None:
                continue
            if isinstance(got, int) and got > 0 and got != want:
                raise BadInput(f"{self.path}: input shape {inputs[0].shape} does not match its metadata "
                               f"(vbg.input_size_wh {[w, h]}, layout {self.meta.layout})",
                               "fix vbg.input_size_wh / vbg.layout or re-export the model")
        if not outputs:
            raise BadInput(f"{self.path} has no output", "use a segmentation model")
        self._input_name = inputs[0].name
        self._output_name = outputs[0].name

    def _prepare(self) -> None:
        mean = np.asarray(self.meta.mean, np.float32)
        std = np.asarray(self.meta.std, np.float32)
        if self.meta.color == "RGB":  # frames are BGR: reorder the per-channel constants instead of the pixels
            self._swap = True
        else:
            self._swap = False
        # x = (p/255 - mean)/std = p * scale + offset, per channel (in the model's channel order)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)
        self._buffers(self.meta.input_size_wh)

    def _buffers(self, size_wh) -> None:
        """(Re)allocate the input buffers for an input of ``size_wh`` (changes only with ``vbg.fit = aspect``,
        when the frame's aspect does)."""
        w, h = size_wh
        shape = (1, 3, h, w) if self.meta.layout == "NCHW" else (1, h, w, 3)
        self._blob = np.empty(shape, np.float32)
        self._small = np.empty((h, w, 3), np.uint8)
        self.run_size_wh = (w, h)  # the input size of the last frame (the nominal size unless vbg.fit = aspect)
        self.crop = (0, 0, w, h)  # (x0, y0, w, h) of the last frame inside the model input

    # -- inference ---------------------------------------------------------------------------------------
    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self.meta.input_size_wh

    def preprocess(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Resize and normalise a BGR uint8 frame into the model's input tensor (a reused buffer).

        ``vbg.fit = letterbox`` models get the frame at its own aspect on grey bars (vbg_app/engines/fit.py);
        :attr:`crop` then says which part of the output is the frame. ``vbg.fit = aspect`` models get an input
        of the frame's aspect (:func:`~vbg_app.engines.fit.fit_size`, :attr:`run_size_wh`)."""
        fh, fw = frame_bgr.shape[:2]
        w, h = fit_size((fw, fh), self.meta.input_size_wh, self.meta.fit)
        if (w, h) != self.run_size_wh:
            self._buffers((w, h))
            self.crop = (-1, -1, -1, -1)  # repaint the bars
            if self.meta.fit == "aspect" and self._free_dims and self._session is not None:
                self._session = self._session_for((w, h))
        x0, y0, cw, ch = (letterbox_box((fw, fh), (w, h)) if self.meta.fit != "stretch" else (0, 0, w, h))
        if (x0, y0, cw, ch) == (0, 0, w, h):
            self._shrink(frame_bgr, (w, h), self._small)
        else:
            if self.crop != (x0, y0, cw, ch):
                self._small[:] = PAD_VALUE  # the bars only change when the frame size does
            self._shrink(frame_bgr, (cw, ch), self._small[y0:y0 + ch, x0:x0 + cw])
        self.crop = (x0, y0, cw, ch)
        return self.normalise()

    def normalise(self) -> np.ndarray:
        """The second half of :meth:`preprocess`: the resized frame (``_small``) into the input tensor, channels
        in the model's order, ``(p/255 - mean)/std`` (timed apart by ``python -m vbg_app.tools.budget``)."""
        src = self._small[:, :, ::-1] if self._swap else self._small
        if self.meta.layout == "NCHW":
            for c in range(3):
                np.multiply(src[:, :, c], self._scale[c], out=self._blob[0, c], casting="unsafe")
                self._blob[0, c] += self._offset[c]
        else:
            np.multiply(src, self._scale, out=self._blob[0], casting="unsafe")
            self._blob[0] += self._offset
        return self._blob

    def _shrink(self, img: np.ndarray, size_wh, dst: np.ndarray) -> None:
        """``img`` resized to ``size_wh`` into ``dst``: halved with INTER_AREA (a 2x2 box, OpenCV's fast path)
        while it stays at least twice the target in both sides, then one bilinear step (a factor under 2).

        One INTER_AREA resize by a non-integer factor (1280x720 -> 398x224: 3.2x) cost 3.9-4.6 ms of CPU
        here; this costs 0.6 ms, and a 1280x720 frame then reaches the model the way a 640x360 one does.
        Measured on the demo at 720p against the direct INTER_AREA resize: mean |prob difference| 0.0015,
        0.14 % of mask pixels on the other side of 0.5 (docs/bench.md).

        The compositor's pyramid is made of the same images (its halvings, and the frame at the mask's size):
        they are fresh arrays, left in :mod:`vbg_app.framecache` for this frame so it does not redo them
        (:func:`vbg_app.framecache.shrink`, which the MediaPipe engine uses too)."""
        from vbg_app import framecache

        dst[:] = framecache.shrink(img, size_wh)

    def segment(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Person probability (h, w) float32 in 0..1 at the model's resolution for a BGR uint8 frame (for a
        letterboxed frame, only the frame's region of the output: its aspect is the frame's)."""
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 \
                or frame_bgr.shape[2] != 3 or frame_bgr.shape[0] < 2 or frame_bgr.shape[1] < 2:
            desc = (f"{frame_bgr.dtype} array of shape {frame_bgr.shape}" if isinstance(frame_bgr, np.ndarray)
                    else type(frame_bgr).__name__)
            raise BadInput(f"segmenter got a {desc}, expected an HxWx3 uint8 BGR frame",
                           "convert the frame with vbg_app.sources.to_bgr8 first")
        blob = self.preprocess(frame_bgr)
        prob = self._postprocess(self._run(blob))
        x0, y0, cw, ch = self.crop
        if (cw, ch) != tuple(self.run_size_wh):  # letterboxed: only the frame's part, not the bars
            prob = prob[y0:y0 + ch, x0:x0 + cw]
        return prob

    def _session_for(self, size_wh):
        """The session for one input size of a dynamic (``vbg.fit = aspect``) model, made once per size (~20 ms;
        a camera keeps its size, so this happens at start and when the source changes)."""
        if size_wh not in self._sized:
            if len(self._sized) >= 4:  # a few sizes at most: sources rarely change
                self._sized.pop(next(iter(self._sized)))
            self._sized[size_wh] = self._create(_ort(), self._providers, size_wh)
        return self._sized[size_wh]

    def _run(self, blob: np.ndarray) -> np.ndarray:
        """One inference. A GPU provider that fails is replaced by the CPU once (``fallbacks`` becomes 1,
        ``fallback_reason`` says why); the CPU session is never replaced, so nothing is retried in a loop."""
        session = self._session
        if session is None:
            raise DeviceUnavailable(f"the model {self.path.name} cannot run: {self.fallback_reason or 'it was closed'}",
                                    "restart vbg; if it happens again, use --provider cpu")
        try:
            return session.run([self._output_name], {self._input_name: blob})[0]
        except Exception as exc:
            if self.provider == "cpu" or self.fallbacks:
                raise
            if self.strict:
                raise DeviceUnavailable(f"{self.provider} failed while running ({str(exc)[:160]})",
                                        INSTALL_HINT.get(self.provider, INSTALL_HINT["cuda"])) from None
            # a GPU provider failing at run time: drop it for the CPU, once
            self.fallbacks += 1
            self.fallback_reason = f"{self.provider} failed while running ({str(exc)[:160]})"
            log.warning("%s; switching to the CPU", self.fallback_reason)
            self.provider = "cpu"
            self._session = None
            self._sized.clear()
            self._providers = ["CPUExecutionProvider"]
            try:
                self._session = (self._session_for(self.run_size_wh) if self._free_dims
                                 else self._create(_ort(), self._providers))
            except Exception as exc2:
                self.fallback_reason += f"; the CPU could not take over ({exc2})"
                raise DeviceUnavailable(self.fallback_reason, "restart vbg with --provider cpu") from None
            return self._session.run([self._output_name], {self._input_name: blob})[0]

    def _postprocess(self, out) -> np.ndarray:
        out = np.asarray(out)
        if self.meta.output == "softmax2":
            if out.ndim != 4 or out.shape[0] != 1 or out.shape[1] != 2:
                raise BadInput(f"{self.path}: output shape {out.shape} is not [1,2,H,W] as vbg.output=softmax2 says",
                               "fix vbg.output in the model's metadata")
            prob = out[0, 1]
        elif out.ndim == 4 and out.shape[0] == 1 and 1 in (out.shape[1], out.shape[3]):
            prob = out[0, 0] if out.shape[1] == 1 else out[0, :, :, 0]
        elif out.ndim == 3 and out.shape[0] == 1:
            prob = out[0]
        elif out.ndim == 2:
            prob = out
        else:
            raise BadInput(f"{self.path}: output shape {out.shape} is not [1,1,H,W], [1,H,W,1], [1,H,W] or [H,W] "
                           "as vbg.output=prob1 says", "fix vbg.output in the model's metadata")
        return np.ascontiguousarray(prob, dtype=np.float32)

    def close(self) -> None:
        self._session = None
        self._sized.clear()

    def __repr__(self) -> str:
        return f"OnnxSegmenter({self.path.name!r}, provider={self.provider!r})"

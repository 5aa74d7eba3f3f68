"""Checkpoints of ``vbg train`` (``last.pt`` / ``best.pt``): written as tensors and plain data only, read with
``torch.load(weights_only=True)``.

A ``.pt`` file is a pickle, and unpickling an arbitrary one runs whatever code it names. Every checkpoint
vbg reads comes from a path a user typed (``vbg export --checkpoint``, ``vbg train --resume``,
``model.init: PATH``) and may have been downloaded, so :func:`load_checkpoint` accepts only tensors, numbers,
strings and containers of them (torch's weights-only unpickler), plus, for checkpoints written before this
rule, the few numpy types they held (the numpy RNG state as an array, numpy float scalars in the val scores).
Anything else is refused with :class:`~vbg_app.errors.BadInput` before any of it runs.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from vbg_app.errors import BadInput

# the entries of a checkpoint that are torch's own state dicts (kept as torch made them: tensors, ints, floats)
STATE_DICTS = ("model", "optimizer", "scheduler", "scaler")
FIX = "pass best.pt or last.pt from a vbg train output folder"


def to_plain(obj):
    """``obj`` with numpy arrays and scalars, paths and other objects turned into lists, numbers and strings,
    so that it loads under ``weights_only=True`` (tensors, dicts, lists and tuples are kept)."""
    import numpy as np

    if obj is None or (isinstance(obj, (bool, int, float, str, torch.Tensor)) and not isinstance(obj, np.generic)):
        return obj
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj) if type(obj) in (list, tuple) else [to_plain(v) for v in obj]
    return str(obj)


def save_checkpoint(path: Path, **state) -> None:
    """Write ``state`` to ``path`` atomically (a ``.tmp`` file renamed over it): torch state dicts as they are,
    everything else through :func:`to_plain`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v if k in STATE_DICTS else to_plain(v) for k, v in state.items()}, tmp)
    tmp.replace(path)


def _legacy_numpy_globals() -> list:
    """What a checkpoint of an earlier vbg holds besides plain data: the numpy RNG state (a uint32 array) and
    numpy float scalars. Array and scalar *data* of these dtypes only: no object arrays' classes, no functions
    but numpy's own array/scalar rebuilders (whose contents still go through the weights-only unpickler)."""
    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    rebuild = [multiarray._reconstruct, multiarray.scalar]
    out: list = [np.ndarray, np.dtype, *rebuild,
                 *(type(np.dtype(t)) for t in (np.uint32, np.int64, np.float32, np.float64))]
    if tuple(int(v) for v in re.findall(r"\d+", torch.__version__)[:2]) >= (2, 6):
        # a file pickled under the other numpy major names the rebuilders by the other module path
        for f in rebuild:
            for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
                if module != f.__module__:
                    out.append((f, f"{module}.{f.__name__}"))
    return out


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4" and the like
        safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
        if safe_globals is None:  # pragma: no cover - older torch: plain data only
            return torch.load(path, map_location="cpu", weights_only=True)
        with safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(path, fix: str = FIX):
    """The contents of the checkpoint at ``path`` (a dict, or a bare state dict), read without running any
    code it may carry. :class:`BadInput` when the file is missing, is not a torch file, or holds anything
    but tensors and plain data."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"checkpoint {path} not found", fix)
    try:
        return _load(path)
    except pickle.UnpicklingError as exc:
        # torch's wording differs between versions: "Unsupported global: GLOBAL os.system was not an allowed
        # global", "Trying to load unsupported GLOBAL posix.system", "Can only build ... but got <class 'X'>"
        text = str(exc)
        m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"but got <class '([\w.]+)'>", text)
        if m:
            raise BadInput(f"{path} is refused: it holds {m.group(1)}, which a vbg train checkpoint never does, "
                           "and loading it could run code", fix) from None
        if "Unsupported operand" in text or "Weights only load failed" not in text:
            raise BadInput(f"{path} is not a ConnectNet checkpoint (not a torch.save file of tensors and plain "
                           "data)", fix) from None
        raise BadInput(f"{path} is refused: it holds objects other than tensors and plain data, and loading it "
                       "could run code", fix) from None
    except Exception as exc:  # a zip that is not torch's, a truncated file, a pickle torch trips over...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadInput(f"{path} is not a ConnectNet checkpoint (torch.load cannot read it: {first[:100]})",
                       fix) from None


def rng_state() -> dict:
    """The RNG states as tensors and plain data (the numpy key array as a list): loadable with weights_only."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

#!/usr/bin/env python3
"""GPU checks for vbg, in one go, on a machine with an NVIDIA GPU (issue #16 item 3; docs/bench.md says what
a good run prints)::

    python3 tests/gpu/run_gpu_checks.py                       # fresh venv (runs/gpu_check/venv), then every check
    python3 tests/gpu/run_gpu_checks.py --python ENV/bin/python   # an environment that already has onnxruntime-gpu
    python3 tests/gpu/run_gpu_checks.py --pip-args "--no-index --find-links /wheels"   # an offline machine
    python3 tests/gpu/run_gpu_checks.py --skip-tensorrt --skip-train --quick

Checks, each printed as ``[PASS]``, ``[FAIL]``, ``[WARN]`` or ``[SKIP]`` with what was measured:

1. ``device``: ``nvidia-smi -L`` lists a GPU; otherwise the script stops at once with ``no CUDA device: ...``
   (exit 3) and installs nothing.
2. ``venv``: a fresh virtual environment with ``pip install -e .[gpu,train,mediapipe]`` -- onnxruntime-gpu and
   NOT onnxruntime: the two wheels overwrite each other's files, so a venv holding both is refused with the fix.
3. ``providers`` (inside that environment): for CUDA and TensorRT, the provider is offered, a strict
   ``OnnxSegmenter`` really runs on it (``session.get_providers()[0]`` read back: onnxruntime-gpu falls back to
   the CPU *silently* when CUDA/cuDNN libraries are missing), its masks match the CPU's, and for CUDA the model
   runs with IO binding on ``cuda:0`` (input and output in GPU memory), faster than on the CPU, while
   ``nvidia-smi`` lists this process as using GPU memory. Nodes that onnxruntime leaves on the CPU
   (``session.disable_cpu_ep_fallback``) are a warning, not a failure.
4. ``bench``: ``vbg bench`` rows for cuda, tensorrt and cpu at 1280x720 and 1920x1080 (ConnectNet, the
   256x144 export, MediaPipe on the CPU for comparison); every GPU row must be ``ok`` and have run on its
   provider (``provider_ran``). The pipeline columns of the 1920x1080 rows are the pipeline at 1080p.
5. ``run-1080p``: ``vbg run`` (the app's own path) on the demo at 1920x1080 with ``--provider cuda``, as fast as
   it goes, 600 frames: exit 0 and the status line says cuda.
6. ``train``: torch sees CUDA (a CUDA build, not the CPU wheel) and a short ``vbg train`` burst (the smoke
   config, ``--device cuda``) finishes; ``vbg train --bench`` prints training it/s on the GPU.

Everything goes to ``--out`` (default runs/gpu_check): ``gpu_checks.json`` (every check and figure),
``bench_gpu.json`` / ``bench_gpu.md``, logs. Exit code: 0 every required check passed, 1 a check failed,
3 no CUDA device. Only the standard library is needed to start (``--help`` works anywhere).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPU_PROVIDERS = ("cuda", "tensorrt")


class Report:
    def __init__(self, out: Path) -> None:
        self.out, self.checks = out, []

    def add(self, name: str, status: str, detail: str, **data) -> None:
        self.checks.append({"check": name, "status": status, "detail": detail, **data})
        print(f"[{status}] {name}: {detail}", flush=True)

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_checks.json").write_text(json.dumps({"checks": self.checks}, indent=1))

    @property
    def failed(self) -> bool:
        return any(c["status"] == "FAIL" for c in self.checks)


# -- 1. device ---------------------------------------------------------------------------------------------
def find_gpus(nvidia_smi: str) -> tuple[list[str], str]:
    """(GPU lines of ``nvidia-smi -L``, why none) -- never raises."""
    exe = shutil.which(nvidia_smi) if os.sep not in nvidia_smi else (nvidia_smi if Path(nvidia_smi).is_file() else None)
    if not exe:
        return [], f"{nvidia_smi} not found (no NVIDIA driver installed)"
    try:
        res = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"{exe} -L failed ({exc})"
    gpus = [line.strip() for line in res.stdout.splitlines() if line.strip().startswith("GPU ")]
    if res.returncode != 0 or not gpus:
        why = (res.stderr.strip() or res.stdout.strip() or f"exit {res.returncode}").splitlines()[0]
        return [], f"{exe} -L lists no GPU ({why})"
    return gpus, ""


# -- 2. environment ----------------------------------------------------------------------------------------
def run_logged(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> tuple[int, str]:
    """Run ``cmd`` in the repository, output to ``log``; (exit code, last lines)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
        rc, text = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as exc:
        rc = 124
        text = f"{exc.stdout or ''}{exc.stderr or ''}\n(timed out after {timeout:.0f} s)"
        text = text if isinstance(text, str) else str(text)
    log.write_text(f"$ {' '.join(cmd)}\n({time.time() - t0:.1f} s, exit {rc})\n{text}")
    return rc, "\n".join(text.strip().splitlines()[-15:])


def make_venv(rep: Report, venv: Path, pip_args: list[str], extras: str) -> str | None:
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if venv.exists():
        shutil.rmtree(venv)
    rc, tail = run_logged([sys.executable, "-m", "venv", str(venv)], rep.out / "venv.log", 300)
    if rc != 0:
        rep.add("venv", "FAIL", f"python -m venv {venv} failed: {tail}")
        return None
    rc, tail = run_logged([str(py), "-m", "pip", "install", *pip_args, "-e", f"{REPO}[{extras}]"],
                          rep.out / "pip_install.log", 1800)
    if rc != 0:
        rep.add("venv", "FAIL", f"pip install -e .[{extras}] failed (see {rep.out / 'pip_install.log'}): {tail[-400:]}")
        return None
    return str(py)


def check_onnxruntime_wheels(rep: Report, py: str) -> bool:
    res = subprocess.run([py, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, timeout=120)
    names = {p["name"].lower(): p["version"] for p in json.loads(res.stdout or "[]")}
    gpu, cpu = names.get("onnxruntime-gpu"), names.get("onnxruntime")
    if gpu and cpu:
        rep.add("venv", "FAIL", f"onnxruntime {cpu} and onnxruntime-gpu {gpu} are both installed: they overwrite each "
                                "other's files, so which one runs is an accident. Fix: pip uninstall -y onnxruntime "
                                "onnxruntime-gpu && pip install onnxruntime-gpu")
        return False
    if not gpu:
        rep.add("venv", "FAIL", f"onnxruntime-gpu is not installed in {py} (onnxruntime: {cpu or 'none'}). Fix: "
                                "pip uninstall -y onnxruntime && pip install 'vbg[gpu]'")
        return False
    rep.add("venv", "PASS", f"{py}: onnxruntime-gpu {gpu}, no CPU onnxruntime; torch {names.get('torch', 'absent')}")
    return True


# -- 3. providers (runs inside the GPU environment: --inner providers) ---------------------------------------
def _gpu_memory_of(pid: int) -> int | None:
    """MiB of GPU memory nvidia-smi lists for ``pid`` (None: not listed or no nvidia-smi)."""
    try:
        res = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in res.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                return int(float(parts[1]))
            except ValueError:
                return None
    return None


def inner_providers(out: Path, model: str, skip: set, providers=GPU_PROVIDERS) -> list[dict]:
    """The provider checks, run inside the GPU environment. ``providers``: the ones to check (the tests pass
    ``cpu`` to run this code where there is no GPU: it then checks the CPU as if it were the device)."""
    import numpy as np
    import onnxruntime as ort

    from vbg_app.engines.onnx_engine import PROVIDERS, OnnxSegmenter, available_providers
    from vbg_app.errors import VbgError
    from vbg_app.sources import DemoSource

    checks = []

    def add(name, status, detail, **data):
        checks.append({"check": name, "status": status, "detail": detail, **data})

    frames = [DemoSource(1280, 720, realtime=False).read() for _ in range(3)]
    cpu = OnnxSegmenter(model, provider="cpu", threads=0)
    ref = [cpu.segment(f).copy() for f in frames]
    blob = cpu.preprocess(frames[0]).copy()
    cpu_ms = []
    for _ in range(30):
        t0 = time.perf_counter()
        cpu._run(blob)
        cpu_ms.append((time.perf_counter() - t0) * 1e3)
    cpu_med = float(np.median(cpu_ms))
    offered = available_providers()
    for p in providers:
        name = f"provider {p}"
        if p in skip:
            add(name, "SKIP", "skipped (--skip-tensorrt)")
            continue
        if p not in offered and p != "cpu":
            add(name, "FAIL", f"{PROVIDERS[p]} is not offered by onnxruntime {ort.__version__} "
                              f"(it offers {ort.get_available_providers()})")
            continue
        t0 = time.time()
        try:
            seg = OnnxSegmenter(model, provider=p, strict=True)
        except VbgError as exc:  # strict: the session fell back to the CPU, or the provider failed to start
            add(name, "FAIL", f"{exc.what} -- fix: {exc.fix}")
            continue
        load_s = time.time() - t0
        took = seg._session.get_providers()
        if seg.provider != p or took[0] != PROVIDERS[p]:
            add(name, "FAIL", f"asked for {p}, the session runs on {took} (fell back silently)")
            continue
        diffs = [float(np.abs(seg.segment(f) - r).max()) for f, r in zip(frames, ref)]
        ok = max(diffs) < 0.05
        add(name, "PASS" if ok else "FAIL", f"session providers {took}, built in {load_s:.1f} s; masks vs CPU: "
                                            f"max |diff| {max(diffs):.4f}" + ("" if ok else " (over 0.05)"),
            providers=took, load_s=load_s, max_diff_vs_cpu=max(diffs))
        if p in ("cuda", "cpu"):
            sess = seg._session
            x = ort.OrtValue.ortvalue_from_numpy(blob, p, 0)
            io = sess.io_binding()
            io.bind_ortvalue_input(seg._input_name, x)
            io.bind_output(seg._output_name, p, 0)
            for _ in range(10):
                sess.run_with_iobinding(io)
            ms = []
            for _ in range(100):
                t1 = time.perf_counter()
                sess.run_with_iobinding(io)
                io.synchronize_outputs()
                ms.append((time.perf_counter() - t1) * 1e3)
            plain = []  # session.run: the input copied to the device and the output back every call (the app's way)
            for _ in range(100):
                t1 = time.perf_counter()
                seg._run(blob)
                plain.append((time.perf_counter() - t1) * 1e3)
            plain_med = float(np.median(plain))
            dev = io.get_outputs()[0].device_name().lower()
            on_gpu = dev == p
            got = seg._postprocess(io.copy_outputs_to_cpu()[0])
            diff = float(np.abs(got - ref[0]).max())
            med = float(np.median(ms))
            mem = _gpu_memory_of(os.getpid())
            ok = on_gpu and med < cpu_med and diff < 0.05
            add(f"{p} device use", "PASS" if ok else "FAIL",
                f"IO binding on {p}:0: output lives on {dev}, {med:.2f} ms per inference (session.run with copies: "
                f"{plain_med:.2f} ms; CPU, all threads: {cpu_med:.2f} ms), max |diff| vs CPU {diff:.4f}; nvidia-smi: "
                f"this process holds {'?' if mem is None else mem} MiB of GPU memory",
                iobinding_ms=med, run_ms=plain_med, cpu_ms=cpu_med, gpu_memory_mib=mem, output_device=dev)
        if p == "cuda":  # the CPU provider must not be listed with disable_cpu_ep_fallback (onnxruntime refuses that)
            so = ort.SessionOptions()
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
            try:
                ort.InferenceSession(model, sess_options=so, providers=[PROVIDERS[p]])
                add(f"{p} all nodes", "PASS", f"every node of the model is placed on {p} (disable_cpu_ep_fallback)")
            except Exception as exc:  # some nodes (shape arithmetic) may stay on the CPU: a warning
                add(f"{p} all nodes", "WARN", f"onnxruntime keeps some nodes on the CPU: {str(exc).splitlines()[0][:300]}")
        seg.close()
    return checks


# -- 4./5./6. -----------------------------------------------------------------------------------------------
def check_bench(rep: Report, py: str, skip: set, quick: bool) -> None:
    providers = ",".join([p for p in GPU_PROVIDERS if p not in skip] + ["cpu"])
    js, md = rep.out / "bench_gpu.json", rep.out / "bench_gpu.md"
    frames = ["--frames", "60", "--warmup", "20"] if quick else ["--frames", "200", "--warmup", "30"]
    cmd = [py, "-m", "vbg_app.tools.bench", "--engines", "connectnet,mediapipe", "--providers", providers,
           "--threads", "0", "--sizes", "1280x720,1920x1080", *frames, "--no-progress",
           "--json", str(js), "--markdown", str(md)]
    model = REPO / "models" / "connectnet_256x144.onnx"
    if model.is_file():
        cmd[5:5] = ["--model", str(model)]
    rc, tail = run_logged(cmd, rep.out / "bench.log", 1800)
    if rc != 0 or not js.is_file():
        rep.add("bench", "FAIL", f"vbg bench exited {rc}: {tail[-600:]}")
        return
    doc = json.loads(js.read_text())
    bad = []
    for r in doc["results"]:
        if r["provider"] not in GPU_PROVIDERS or r["engine_kind"] != "connectnet":
            continue
        size = "x".join(map(str, r["size_wh"] or [])) or "-"
        if r["status"] != "ok" or r["provider_ran"] != r["provider"]:
            bad.append(f"{r['engine']} {r['provider']} {size}: {r['status']} {r['reason']}")
            continue
        p = r["pipeline"]
        rep.add(f"bench {r['engine']} {r['provider']} {size}", "PASS",
                f"model {r['model']['median_ms']:.2f} ms, pipeline {p['fps']:.1f} fps, CPU {r['cpu_ms_per_frame']:.1f} "
                f"ms/frame, paced 30 fps: {(r['paced'] or {}).get('cpu_pct') or float('nan'):.0f} % CPU",
                row=r)
    if bad:
        rep.add("bench", "FAIL", "; ".join(bad))
    else:
        rep.add("bench", "PASS", f"every GPU row ran on its provider; table in {md}")


def check_run_1080p(rep: Report, py: str) -> None:
    cmd = [py, "-m", "vbg_app", "run", "--source", "demo", "--size", "1920x1080", "--provider", "cuda",
           "--sink", "null", "--as-fast-as-possible", "--frames", "600"]
    rc, tail = run_logged(cmd, rep.out / "run_1080p.log", 600)
    last = tail.splitlines()[-1] if tail else ""
    ok = rc == 0 and "| cuda |" in last and "fallback" not in last
    rep.add("run-1080p", "PASS" if ok else "FAIL", f"vbg run exit {rc}: {last[:300]}")


def check_train(rep: Report, py: str) -> None:
    probe = ("import torch, json; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
             "'available': torch.cuda.is_available(), 'name': torch.cuda.get_device_name(0) "
             "if torch.cuda.is_available() else None}))")
    res = subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=300)
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rep.add("train", "FAIL", f"torch does not import: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
        return
    if not info["available"]:
        why = "a CPU-only torch wheel" if not info["cuda"] else f"torch built for CUDA {info['cuda']} sees no device"
        rep.add("train", "FAIL", f"torch {info['torch']}: {why}. Fix: pip install torch --index-url "
                                 "https://download.pytorch.org/whl/cu124 (a CUDA build)")
        return
    out = rep.out / "train_smoke"
    rc, tail = run_logged([py, "-m", "vbg_app.train", "--config", "vbg_app/train/configs/smoke.yaml", "--device", "cuda",
                           "--iters", "40", "--output", str(out), "--quiet"], rep.out / "train.log", 900)
    if rc != 0:
        rep.add("train", "FAIL", f"vbg train --device cuda exited {rc}: {tail[-500:]}")
        return
    rc2, tail2 = run_logged([py, "-m", "vbg_app.train", "--config", "vbg_app/train/configs/connectnet_v1.yaml",
                             "--device", "cuda", "--bench", "--bench-iters", "20"], rep.out / "train_bench.log", 900)
    speed = [line for line in tail2.splitlines() if "it/s" in line]
    rep.add("train", "PASS", f"torch {info['torch']} (CUDA {info['cuda']}) on {info['name']}: smoke training "
                             f"(40 iterations) done; " + ("; ".join(speed[-2:]) if rc2 == 0 and speed else
                                                           f"--bench exit {rc2} (see train_bench.log)"))


# -- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run_gpu_checks.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "gpu_check"), help="folder for the results and logs")
    ap.add_argument("--python", help="use this interpreter (it must have vbg and onnxruntime-gpu) instead of a fresh venv")
    ap.add_argument("--venv", help="where to create the fresh venv (default: OUT/venv; deleted and re-made)")
    ap.add_argument("--pip-args", default="", help="extra pip install arguments, e.g. '--no-index --find-links DIR'")
    ap.add_argument("--extras", default="gpu,train,mediapipe", help="vbg extras to install (never 'cpu')")
    ap.add_argument("--skip-tensorrt", action="store_true", help="no TensorRT checks (no TensorRT libraries here)")
    ap.add_argument("--skip-train", action="store_true", help="no torch training burst")
    ap.add_argument("--quick", action="store_true", help="fewer bench frames")
    ap.add_argument("--nvidia-smi", default="nvidia-smi", help=argparse.SUPPRESS)  # tests: a missing tool
    ap.add_argument("--inner", choices=["providers"], help=argparse.SUPPRESS)       # run inside the GPU venv
    ap.add_argument("--as-gpu", help=argparse.SUPPRESS)  # tests: --inner providers --as-gpu cpu
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    skip = {"tensorrt"} if args.skip_tensorrt else set()

    if args.inner == "providers":
        provs = tuple(args.as_gpu.split(",")) if args.as_gpu else GPU_PROVIDERS
        checks = inner_providers(out, str(REPO / "models" / "connectnet.onnx"), skip, provs)
        print("CHECKS " + json.dumps(checks))
        return 0

    rep = Report(out)
    gpus, why = find_gpus(args.nvidia_smi)
    if not gpus:
        print(f"no CUDA device: {why}. These checks need an NVIDIA GPU with its driver; nothing was installed "
              "or measured.", file=sys.stderr)
        return 3
    rep.add("device", "PASS", "; ".join(gpus))
    if "cpu" in [e.strip() for e in args.extras.split(",")]:
        rep.add("venv", "FAIL", "--extras must not name cpu: onnxruntime and onnxruntime-gpu overwrite each other")
        rep.save()
        return 1
    py = args.python or make_venv(rep, Path(args.venv or out / "venv").resolve(), args.pip_args.split(), args.extras)
    if not py or not check_onnxruntime_wheels(rep, py):
        rep.save()
        return 1
    rc, tail = run_logged([py, str(Path(__file__).resolve()), "--inner", "providers", "--out", str(out)]
                          + (["--skip-tensorrt"] if args.skip_tensorrt else []), out / "providers.log", 1200)
    lines = [line for line in tail.splitlines() if line.startswith("CHECKS ")]
    if rc != 0 or not lines:
        rep.add("providers", "FAIL", f"the provider checks crashed (exit {rc}): {tail[-600:]}")
    else:
        for c in json.loads(lines[-1][len("CHECKS "):]):
            rep.add(c.pop("check"), c.pop("status"), c.pop("detail"), **c)
    check_bench(rep, py, skip, args.quick)
    check_run_1080p(rep, py)
    if args.skip_train:
        rep.add("train", "SKIP", "skipped (--skip-train)")
    else:
        check_train(rep, py)
    rep.save()
    n_fail = sum(c["status"] == "FAIL" for c in rep.checks)
    print(f"{'FAILED' if n_fail else 'PASSED'}: {len(rep.checks)} checks, {n_fail} failed; results in "
          f"{out / 'gpu_checks.json'}")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())

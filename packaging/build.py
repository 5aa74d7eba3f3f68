"""Build vbg's one-folder app bundle (PyInstaller) and, on Linux, the installable ``.tar.gz``.

    python packaging/build.py                      # dist/vbg/ + dist/vbg-0.1.0-linux-x86_64.tar.gz
    python packaging/build.py --with-mediapipe     # also bundle the MediaPipe engine (+~125 MB)
    python packaging/build.py --smoke              # then run the bundle from a copy, in a clean environment

Needs PyInstaller in the build environment (``pip install -e ".[packaging]"`` plus the runtime extras the
bundle should carry: ``cpu`` or ``gpu``, ``gui``). The bundle gets whatever onnxruntime the environment has:
build with ``onnxruntime-gpu`` installed (the ``gpu`` extra) for a CUDA/TensorRT bundle. After the build this
script prints which provider libraries went in and warns when the installed onnxruntime offers a provider whose
library is missing from the bundle (the "CUDA works from pip but not in the app" failure).

Writes ``DIST/vbg-build.json`` (sizes, times, providers) for the tests and the release notes. Exit codes: 0 ok,
1 the build or the smoke run failed, 2 bad usage (PyInstaller missing), 4 provider libraries missing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "vbg.spec"

# onnxruntime execution providers that live in their own shared library next to onnxruntime's core library;
# the others (CPU, DirectML, CoreML, XNNPACK, Azure, ...) are compiled into the core library itself
PROVIDER_LIBS = {
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "tensorrt",
    "OpenVINOExecutionProvider": "openvino",
    "ROCMExecutionProvider": "rocm",
    "MIGraphXExecutionProvider": "migraphx",
    "DnnlExecutionProvider": "dnnl",
    "CANNExecutionProvider": "cann",
    "VitisAIExecutionProvider": "vitisai",
    "QNNExecutionProvider": "qnn",
    "NvTensorRTRTXExecutionProvider": "nv_tensorrt_rtx",
}


def version() -> str:
    ns: dict = {}
    exec((ROOT / "vbg_app" / "__init__.py").read_text(), ns)
    return ns["__version__"]


def platform_tag() -> str:
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    return f"{system}-{machine}"


def dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _provider_lib_names(folder: Path) -> list[str]:
    """``libonnxruntime_providers_X.so`` / ``onnxruntime_providers_X.dll`` / ``.dylib`` under folder."""
    names = []
    for p in folder.rglob("*onnxruntime_providers_*"):
        if p.suffix in (".so", ".dll", ".dylib") or ".so." in p.name:
            names.append(p.name)
    return sorted(set(names))


def installed_onnxruntime() -> dict:
    """What the build environment's onnxruntime offers, without importing it into this process's state."""
    code = ("import json, os, onnxruntime as o; print(json.dumps({'version': o.__version__, "
            "'providers': o.get_available_providers(), 'dir': os.path.dirname(o.__file__)}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        return {"version": None, "providers": [], "dir": None, "error": res.stderr.strip().splitlines()[-1:]}
    info = json.loads(res.stdout)
    try:
        from importlib.metadata import PackageNotFoundError, distribution
        dists = []
        for name in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
            try:
                distribution(name)
                dists.append(name)
            except PackageNotFoundError:
                pass
        info["distributions"] = dists
    except ImportError:
        info["distributions"] = []
    info["libs"] = _provider_lib_names(Path(info["dir"]))
    return info


def check_providers(ort: dict, bundle: Path) -> tuple[list[str], list[str]]:
    """(provider libraries in the bundle, warnings)."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    in_bundle = _provider_lib_names(internal / "onnxruntime") if (internal / "onnxruntime").is_dir() \
        else _provider_lib_names(internal)
    warnings = []
    if ort.get("version") is None:
        warnings.append("onnxruntime does not import in the build environment: the bundle cannot run models")
        return in_bundle, warnings
    if len(ort.get("distributions", [])) > 1:
        warnings.append(f"more than one onnxruntime distribution is installed ({', '.join(ort['distributions'])}); "
                        "they overwrite each other's files — uninstall all and install exactly one")

    def has(kind: str, names: list[str]) -> bool:
        return any(n.split(".")[0].endswith(f"onnxruntime_providers_{kind}") for n in names)

    for provider in ort["providers"]:
        kind = PROVIDER_LIBS.get(provider)
        if kind is None:
            continue  # built into the core library
        if not has(kind, ort["libs"]):
            warnings.append(f"onnxruntime offers {provider} but its library onnxruntime_providers_{kind} is not "
                            f"in {ort['dir']} either")
        elif not has(kind, in_bundle):
            warnings.append(f"onnxruntime offers {provider} but onnxruntime_providers_{kind} was NOT collected "
                            "into the bundle: the app would silently run on the CPU")
    needs_shared = any(PROVIDER_LIBS.get(p) for p in ort["providers"])
    if needs_shared and not has("shared", in_bundle):
        warnings.append("onnxruntime_providers_shared (which every separate provider library loads) is missing "
                        "from the bundle")
    for name in ort["libs"]:
        if name not in in_bundle:
            warnings.append(f"{name} is installed with onnxruntime but not in the bundle")
    return in_bundle, warnings


def make_tarball(bundle: Path, dist: Path, name: str, level: int) -> Path:
    out = dist / f"{name}.tar.gz"
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=level) as tar:
        tar.add(bundle, arcname=name)
    tmp.replace(out)
    return out


def add_linux_files(bundle: Path) -> None:
    for f in ("install.sh", "uninstall.sh", "vbg.desktop.in"):
        shutil.copy2(HERE / "linux" / f, bundle / f)
    shutil.copy2(HERE / "icons" / "vbg.png", bundle / "vbg.png")
    (bundle / ".vbg-bundle").write_text(f"vbg {version()} {platform_tag()}\n")


def smoke(tarball: Path | None, bundle: Path) -> list[dict]:
    """Run the bundle from a copy outside the source tree with an empty environment (what a user's desktop
    gives a freshly downloaded app); returns one record per command."""
    results = []
    with tempfile.TemporaryDirectory(prefix="vbg-smoke-") as tmp:
        tmp = Path(tmp)
        if tarball:
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="tar") if sys.version_info >= (3, 12) else tar.extractall(tmp)
            app = next(p for p in tmp.iterdir() if p.is_dir())
        else:
            app = tmp / "vbg"
            shutil.copytree(bundle, app, symlinks=True)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "QT_QPA_PLATFORM": "offscreen"}
        exe = ".exe" if sys.platform == "win32" else ""
        if sys.platform == "win32":  # Windows needs its system folders to start anything
            env = {k: os.environ[k] for k in ("SYSTEMROOT", "WINDIR", "TEMP", "TMP") if k in os.environ} | \
                {"PATH": os.environ.get("SYSTEMROOT", r"C:\Windows") + r"\System32", "USERPROFILE": str(tmp),
                 "QT_QPA_PLATFORM": "offscreen"}
        shot = tmp / "shot.png"
        for label, cmd in (
            ("cli first frame", [str(app / f"vbg{exe}"), "run", "--source", "demo", "--sink", "null", "--frames", "1",
                                 "--quiet"]),
            ("cli 30 frames", [str(app / f"vbg{exe}"), "run", "--source", "demo", "--sink", "null", "--frames", "30",
                               "--quiet"]),
            ("gui screenshot", [str(app / f"vbg-gui{exe}"), "--source", "demo", "--screenshot", str(shot),
                                "--quit-after-frames", "10"]),
        ):
            t0 = time.perf_counter()
            res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
            wall = time.perf_counter() - t0
            ok = res.returncode == 0 and (label != "gui screenshot" or
                                          (shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"))
            results.append({"what": label, "rc": res.returncode, "wall_s": round(wall, 2), "ok": ok,
                            "stderr_tail": res.stderr.strip().splitlines()[-3:]})
            print(f"  smoke: {label:16s} rc={res.returncode} {wall:5.2f} s {'ok' if ok else 'FAILED'}")
            if not ok:
                print("    " + "\n    ".join(res.stderr.strip().splitlines()[-15:]), file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller",
                    help="PyInstaller's work folder (default: build/pyinstaller)")
    ap.add_argument("--with-mediapipe", action="store_true", help="bundle the MediaPipe engine (+~125 MB)")
    ap.add_argument("--strip", action="store_true",
                    help="strip symbols from the collected libraries (measured: -31 MB, but it breaks the "
                         "auditwheel-patched libraries of numpy's wheel; experiments only)")
    ap.add_argument("--upx", action="store_true", help="compress binaries with UPX (must be on PATH; untested)")
    ap.add_argument("--keep-all-qt-platforms", action="store_true",
                    help="keep eglfs/linuxfb/vnc platform plugins (left out by default)")
    ap.add_argument("--no-trim", action="store_true",
                    help="measurement only: no exclusions (torch, matplotlib, unused Qt, ... all go in)")
    ap.add_argument("--no-tar", action="store_true", help="skip the Linux .tar.gz")
    ap.add_argument("--compresslevel", type=int, default=6, help="gzip level of the .tar.gz (default 6)")
    ap.add_argument("--smoke", action="store_true", help="run the bundle from a clean copy after building")
    ap.add_argument("--strict", action="store_true",
                    help="exit 4 when an offered onnxruntime provider's library is not in the bundle")
    args = ap.parse_args(argv)

    try:
        import PyInstaller
    except ImportError:
        print("error: PyInstaller is not installed; pip install -e \".[packaging]\" (or pip install pyinstaller)",
              file=sys.stderr)
        return 2

    dist, work = args.dist.resolve(), args.work.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    ort = installed_onnxruntime()
    print(f"vbg {version()} bundle for {platform_tag()}: PyInstaller {PyInstaller.__version__}, Python "
          f"{platform.python_version()}, onnxruntime {ort.get('version')} "
          f"({', '.join(ort.get('distributions') or ['?'])}; providers: {', '.join(ort.get('providers', []))})")

    spec_args = [flag for flag, on in (("--with-mediapipe", args.with_mediapipe), ("--strip", args.strip),
                                       ("--upx", args.upx), ("--keep-all-qt-platforms", args.keep_all_qt_platforms),
                                       ("--no-trim", args.no_trim))
                 if on]
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    if spec_args:
        cmd += ["--", *spec_args]
    log_path = work / "build.log"
    print(f"building: {' '.join(cmd)}\n  (log: {log_path})", flush=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        res = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    build_s = time.perf_counter() - t0
    log_text = log_path.read_text(errors="replace")
    for line in log_text.splitlines():
        if line.startswith("vbg.spec:"):
            print("  " + line)
    if res.returncode != 0:
        print("\n".join(log_text.splitlines()[-40:]), file=sys.stderr)
        print(f"error: PyInstaller failed (exit {res.returncode}); full log: {log_path}", file=sys.stderr)
        return 1
    bundle = dist / "vbg"
    if sys.platform == "darwin" and (dist / "vbg.app").is_dir():
        print(f"  macOS app: {dist / 'vbg.app'}")

    in_bundle, warnings = check_providers(ort, bundle)
    print(f"onnxruntime provider libraries in the bundle: {', '.join(in_bundle) or 'none (CPU-only onnxruntime)'}")
    for w in warnings:
        print(f"WARNING: {w}", file=sys.stderr)

    folder_bytes = dir_size(bundle)
    tarball, tar_s = None, None
    if sys.platform.startswith("linux"):
        add_linux_files(bundle)
        folder_bytes = dir_size(bundle)
        if not args.no_tar:
            t1 = time.perf_counter()
            tarball = make_tarball(bundle, dist, f"vbg-{version()}-{platform_tag()}", args.compresslevel)
            tar_s = time.perf_counter() - t1

    internal = bundle / "_internal"
    parts = sorted(((dir_size(p) if p.is_dir() else p.stat().st_size, p.name) for p in internal.iterdir()
                    if not p.is_symlink()), reverse=True)
    print(f"built in {build_s:.0f} s: {bundle} {mb(folder_bytes)}"
          + (f"; {tarball.name} {mb(tarball.stat().st_size)} ({tar_s:.0f} s)" if tarball else ""))
    print("  largest parts: " + ", ".join(f"{name} {mb(size)}" for size, name in parts[:8]))

    info = {
        "version": version(), "platform": platform_tag(), "pyinstaller": PyInstaller.__version__,
        "python": platform.python_version(), "options": spec_args, "build_s": round(build_s, 1),
        "tar_s": round(tar_s, 1) if tar_s is not None else None, "bundle": str(bundle),
        "bundle_bytes": folder_bytes, "tarball": str(tarball) if tarball else None,
        "tarball_bytes": tarball.stat().st_size if tarball else None,
        "onnxruntime": {k: ort.get(k) for k in ("version", "distributions", "providers", "libs")},
        "provider_libs_in_bundle": in_bundle, "warnings": warnings,
        "mediapipe": (internal / "mediapipe").is_dir(),
        "largest_parts": [{"name": n, "bytes": s} for s, n in parts[:15]],
    }
    rc = 0
    if args.smoke:
        info["smoke"] = smoke(tarball, bundle)
        if not all(r["ok"] for r in info["smoke"]):
            rc = 1
    (dist / "vbg-build.json").write_text(json.dumps(info, indent=2) + "\n")
    if rc == 0 and args.strict and any("NOT collected" in w or "missing from the bundle" in w for w in warnings):
        rc = 4
    return rc


if __name__ == "__main__":
    sys.exit(main())

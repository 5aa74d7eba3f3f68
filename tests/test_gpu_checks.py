"""tests/gpu/run_gpu_checks.py on a machine without a GPU: --help works, no device fails at once and clearly
(exit 3, nothing installed), a venv holding both onnxruntime wheels is refused, and the provider checks run
(with the CPU standing in for the device)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "gpu" / "run_gpu_checks.py"


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_help_needs_no_gpu():
    res = _run("--help")
    assert res.returncode == 0
    for what in ("onnxruntime-gpu", "TensorRT", "--skip-tensorrt", "no CUDA device", "exit 3"):
        assert what in res.stdout


def test_no_nvidia_driver_stops_before_installing_anything(tmp_path):
    out = tmp_path / "out"
    res = _run("--out", str(out), "--nvidia-smi", str(tmp_path / "missing" / "nvidia-smi"))
    assert res.returncode == 3
    assert res.stderr.startswith("no CUDA device: ") and "not found" in res.stderr
    assert not out.exists()  # no venv, no results


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for nvidia-smi")
def test_a_driver_that_sees_no_gpu_is_no_device(tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\n"
                   "exit 9\n")
    smi.chmod(0o755)
    res = _run("--out", str(tmp_path / "out"), "--nvidia-smi", str(smi))
    assert res.returncode == 3 and "no CUDA device: " in res.stderr and "could not communicate" in res.stderr


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for python and nvidia-smi")
def test_both_onnxruntime_wheels_in_one_venv_are_refused(tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA Test GPU (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    py = tmp_path / "python"  # answers `python -m pip list --format json` only
    py.write_text("#!/bin/sh\necho '[{\"name\": \"onnxruntime\", \"version\": \"1.20.0\"}, "
                  "{\"name\": \"onnxruntime-gpu\", \"version\": \"1.20.0\"}]'\n")
    py.chmod(0o755)
    out = tmp_path / "out"
    res = _run("--out", str(out), "--nvidia-smi", str(smi), "--python", str(py))
    assert res.returncode == 1
    assert "[PASS] device: GPU 0: NVIDIA Test GPU" in res.stdout
    assert "[FAIL] venv:" in res.stdout and "both installed" in res.stdout and "pip uninstall" in res.stdout
    checks = json.loads((out / "gpu_checks.json").read_text())["checks"]
    assert [c["status"] for c in checks] == ["PASS", "FAIL"]


def test_provider_checks_run_with_the_cpu_standing_in(tmp_path):
    res = _run("--inner", "providers", "--as-gpu", "cpu,cuda", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("CHECKS ")][-1]
    checks = {c["check"]: c for c in json.loads(line[len("CHECKS "):])}
    assert checks["provider cpu"]["status"] == "PASS" and checks["provider cpu"]["max_diff_vs_cpu"] == 0
    use = checks["cpu device use"]
    assert use["output_device"] == "cpu" and use["iobinding_ms"] > 0 and "max |diff| vs CPU 0.0000" in use["detail"]
    from vbg_app.engines.onnx_engine import available_providers
    if "cuda" not in available_providers():  # this build has no CUDA: said so, not run on the CPU instead
        assert checks["provider cuda"]["status"] == "FAIL" and "not offered" in checks["provider cuda"]["detail"]

"""packaging/build.py's checks, without building anything (fast; PyInstaller not needed)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("vbg_packaging_build", ROOT / "packaging" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_bundle(tmp_path: Path, libs: list[str]) -> Path:
    capi = tmp_path / "vbg" / "_internal" / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    for name in libs:
        (capi / name).write_bytes(b"\x7fELF")
    return tmp_path / "vbg"


GPU_ORT = {"version": "1.31.1", "distributions": ["onnxruntime-gpu"], "dir": "/site/onnxruntime",
           "providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
           "libs": ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so",
                    "libonnxruntime_providers_tensorrt.so"]}


def test_gpu_bundle_with_every_provider_library_passes(build, tmp_path):
    bundle = fake_bundle(tmp_path, GPU_ORT["libs"])
    found, warnings = build.check_providers(GPU_ORT, bundle)
    assert found == GPU_ORT["libs"]
    assert warnings == []


def test_missing_cuda_library_is_reported(build, tmp_path):
    """The failure this check exists for: CUDA works from pip, but the bundle silently runs on the CPU."""
    bundle = fake_bundle(tmp_path, ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_tensorrt.so"])
    found, warnings = build.check_providers(GPU_ORT, bundle)
    assert "libonnxruntime_providers_cuda.so" not in found
    text = "\n".join(warnings)
    assert "CUDAExecutionProvider" in text and "NOT collected" in text
    assert "TensorrtExecutionProvider" not in text


def test_missing_shared_provider_library_is_reported(build, tmp_path):
    bundle = fake_bundle(tmp_path, ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"])
    _, warnings = build.check_providers(GPU_ORT, bundle)
    assert any("providers_shared" in w for w in warnings)


def test_cpu_onnxruntime_needs_no_provider_library(build, tmp_path):
    ort = {"version": "1.32.0", "distributions": ["onnxruntime"], "dir": "/site/onnxruntime",
           "providers": ["AzureExecutionProvider", "CPUExecutionProvider"],
           "libs": ["libonnxruntime_providers_shared.so"]}
    _, warnings = build.check_providers(ort, fake_bundle(tmp_path, ["libonnxruntime_providers_shared.so"]))
    assert warnings == []


def test_two_onnxruntime_distributions_are_reported(build, tmp_path):
    ort = dict(GPU_ORT, distributions=["onnxruntime", "onnxruntime-gpu"])
    _, warnings = build.check_providers(ort, fake_bundle(tmp_path, GPU_ORT["libs"]))
    assert any("more than one onnxruntime" in w for w in warnings)


def test_windows_and_macos_library_names_are_recognised(build, tmp_path):
    bundle = fake_bundle(tmp_path, ["onnxruntime_providers_cuda.dll", "onnxruntime_providers_shared.dll",
                                    "libonnxruntime_providers_coreml.dylib", "notes.txt"])
    found, _ = build.check_providers(dict(GPU_ORT, providers=["CPUExecutionProvider"], libs=[]), bundle)
    assert found == ["libonnxruntime_providers_coreml.dylib", "onnxruntime_providers_cuda.dll",
                     "onnxruntime_providers_shared.dll"]

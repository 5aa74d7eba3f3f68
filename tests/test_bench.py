"""vbg bench: a tiny run end to end (JSON / Markdown / PNG), unavailable providers reported, bad options refused."""
import json

import cv2
import pytest

from tests.tinymodel import make_model
from vbg_app import bench
from vbg_app.engines.onnx_engine import PROVIDERS, available_providers
from vbg_app.errors import BadInput

TINY = ["--engines", "none", "--sizes", "160x120", "--frames", "6", "--warmup", "1", "--threads", "1",
        "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_model(tmp_path_factory.mktemp("bench") / "tiny.onnx", size_wh=(32, 16)))


def _load(path):
    doc = json.loads(path.read_text())
    assert doc["schema"] == "vbg.bench/1"
    return doc


def test_tiny_run_writes_json_markdown_and_png(tiny, tmp_path, capsys):
    js, md, png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    rc = bench.main(TINY + ["--model", tiny, "--providers", "cpu", "--paced-fps", "120",
                            "--json", str(js), "--markdown", str(md), "--plot", str(png)])
    assert rc == 0
    doc = _load(js)
    for key in ("vbg_version", "created", "machine", "settings", "providers", "results"):
        assert key in doc
    m = doc["machine"]
    assert m["usable_cores"] >= 1 and "cpu" in m["onnxruntime_providers"] and m["onnxruntime"]
    assert doc["settings"]["sizes"] == [[160, 120]] and doc["settings"]["frames"] == 6
    (row,) = doc["results"]
    assert row["status"] == "ok", row["reason"]
    assert row["engine"] == "tiny" and row["provider_ran"] == "cpu" and row["threads"] == 1
    assert row["size_wh"] == [160, 120] and row["input_size_wh"] == [32, 16]
    assert row["model"]["n"] == 6 and 0 < row["model"]["median_ms"] <= row["model"]["p95_ms"]
    p = row["pipeline"]
    assert p["frames"] == 6 and p["fps"] > 0 and p["errors"] == 0
    assert set(p["stage_ms"]) == {"capture", "inference", "filter", "composite", "output"}
    assert p["stage_ms"]["inference"] > 0 and p["stage_ms"]["composite"] > 0
    assert row["cpu_ms_per_frame"] > 0 and row["cpu_cores_used"] > 0
    assert row["paced"]["target_fps"] == 120 and row["paced"]["frames"] >= 10 and 0 < row["paced"]["cpu_pct"] <= 100
    assert row["peak_rss_mb"] >= row["rss_mb"] > 10 and row["peak_scope"] == "process"
    cpu = next(x for x in doc["providers"] if x["provider"] == "cpu")
    assert cpu["status"] == "usable"
    text = md.read_text()
    assert "| engine | provider |" in text and "| tiny | cpu | 1 | 160x120 |" in text
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 50 and img.shape[1] > 200
    out = capsys.readouterr().out
    assert "tiny" in out and "160x120" in out


def test_missing_provider_is_reported_not_fatal(tiny, tmp_path):
    missing = [p for p in PROVIDERS if p not in available_providers()]
    if not missing:
        pytest.skip("this onnxruntime build offers every provider")
    js = tmp_path / "b.json"
    rc = bench.main(TINY + ["--model", tiny, "--providers", f"{missing[0]},cpu", "--paced-fps", "0",
                            "--json", str(js)])
    assert rc == 0
    doc = _load(js)
    rows = {r["provider"]: r for r in doc["results"]}
    assert rows[missing[0]]["status"] == "unavailable"
    assert "not in this onnxruntime build" in rows[missing[0]]["reason"] and rows[missing[0]]["fix"]
    assert rows[missing[0]]["pipeline"] is None
    assert rows["cpu"]["status"] == "ok" and rows["cpu"]["pipeline"]["fps"] > 0
    summary = {p["provider"]: p["status"] for p in doc["providers"]}
    assert summary[missing[0]] == "not_installed" and summary["cpu"] == "usable"


def test_unloadable_engines_become_rows(tiny, tmp_path, monkeypatch):
    # the shipped ConnectNet missing, and MediaPipe asked for on a GPU provider: rows, not crashes
    monkeypatch.setattr("vbg_app.resources.root", lambda: tmp_path)
    opts = bench.BenchOptions(engines=bench.engine_specs("connectnet,mediapipe", []), providers=["cpu", "cuda"],
                              threads=[1], sizes=[(160, 120)], frames=2, warmup=0, paced_fps=0, progress=False)
    doc = bench.run_bench(opts)
    by = {(r["engine"], r["provider"]): r for r in doc["results"]}
    assert by[("connectnet", "cpu")]["status"] == "unavailable" and "not found" in by[("connectnet", "cpu")]["reason"]
    assert by[("mediapipe", "cuda")]["status"] == "unavailable" and "CPU only" in by[("mediapipe", "cuda")]["reason"]
    assert "unavailable" in bench.format_table(doc)


@pytest.mark.parametrize("sizes", ["640by480", "1280x", "", "8x8", "1280x720,abc"])
def test_bad_sizes(sizes):
    with pytest.raises(BadInput):
        bench.parse_sizes(sizes)


def test_bad_options_exit_2(tiny, capsys):
    assert bench.main(["--model", tiny, "--sizes", "1280by720"]) == 2
    assert "error: --sizes" in capsys.readouterr().err
    assert bench.main(["--model", tiny, "--providers", "gpu"]) == 2
    assert bench.main(["--model", tiny, "--frames", "0"]) == 2
    assert bench.main(["--engines", "none"]) == 2                       # nothing to measure
    assert bench.main(["--model", "/nonexistent/m.onnx"]) == 2


def test_isolated_run_has_its_own_peak(tiny, tmp_path):
    js = tmp_path / "b.json"
    assert bench.main(TINY + ["--model", tiny, "--providers", "cpu", "--paced-fps", "0", "--frames", "3",
                              "--isolate", "--json", str(js)]) == 0
    (row,) = _load(js)["results"]
    assert row["status"] == "ok" and row["peak_scope"] == "isolated" and row["pipeline"]["fps"] > 0

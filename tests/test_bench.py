"""vbg bench: a tiny run end to end (JSON / Markdown / PNG), unavailable providers reported, bad options refused."""
import json

import cv2
import pytest

from tests.tinymodel import make_model
from vbg_app.tools import bench
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


@pytest.mark.parametrize("flags,matte", [([], True), (["--no-matte"], False)])
def test_no_matte_builds_the_pipeline_without_the_matte_stage(tiny, tmp_path, monkeypatch, flags, matte):
    import vbg_app.compose as compose

    made = []

    class Recording(compose.Compositor):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(compose, "Compositor", Recording)
    js = tmp_path / "b.json"
    assert bench.main(TINY + ["--model", tiny, "--providers", "cpu", "--paced-fps", "0", "--json", str(js),
                              *flags]) == 0
    assert made and all((c.matte is not None) == matte for c in made)
    assert _load(js)["settings"]["matte"] is matte


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


# -- vbg_app.tools.quantize (int8 copy and tail trimming) ----------------------------------------------------------
def _photos(folder, n=6):
    import numpy as np

    from tests.tinymodel import red_person_frame
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        frame, _ = red_person_frame(90, 160)
        frame = np.clip(frame.astype(int) + rng.integers(-40, 40, frame.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    return folder


def _resize_tail_model(path, tail="softmax"):
    """Conv (3 -> 2 logits) at 16x8 → Resize x2 → a per-pixel tail, as the ConnectNet exports end:
    ``softmax`` (opset 17, Softmax over the channels), ``transposed`` (opset 11, PaddleSeg's export: softmax on
    the last axis between two transposes), ``sigmoid`` (vbg's export: l1 - l0 upsampled, concat(-d, d), sigmoid)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vbg_app.engines.meta import ModelMeta
    w = np.zeros((2, 3, 2, 2), np.float32)
    w[1, 0], w[1, 2] = 2.0, -2.0
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["logits"], strides=[2, 2])]
    opset = 11 if tail == "transposed" else 17
    if tail == "sigmoid":
        inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
                  (("s0", [0]), ("s1", [1]), ("s2", [2]), ("ax", [1]))]
        nodes += [helper.make_node("Slice", ["logits", "s0", "s1", "ax"], ["l0"]),
                  helper.make_node("Slice", ["logits", "s1", "s2", "ax"], ["l1"]),
                  helper.make_node("Sub", ["l1", "l0"], ["d"]),
                  helper.make_node("Resize", ["d", "roi", "scales"], ["up"], mode="linear"),
                  helper.make_node("Neg", ["up"], ["neg"]),
                  helper.make_node("Concat", ["neg", "up"], ["cat"], axis=1),
                  helper.make_node("Sigmoid", ["cat"], ["prob"])]
    else:
        nodes.append(helper.make_node("Resize", ["logits", "roi", "scales"], ["up"], mode="linear"))
        if tail == "softmax":
            nodes.append(helper.make_node("Softmax", ["up"], ["prob"], axis=1))
        else:
            nodes += [helper.make_node("Transpose", ["up"], ["t"], perm=[0, 3, 2, 1]),
                      helper.make_node("Softmax", ["t"], ["s"], axis=-1),
                      helper.make_node("Transpose", ["s"], ["prob"], perm=[0, 3, 2, 1])]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 32])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 2, 16, 32])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.helper.set_model_props(model, ModelMeta(input_size_wh=(32, 16), name="tail").to_props())
    onnx.save(model, str(path))
    return path


def test_quantize_int8_keeps_metadata_and_output(tiny, tmp_path):
    import numpy as np

    from tests.tinymodel import red_person_frame
    from vbg_app.tools import quantize
    from vbg_app.engines.onnx_engine import OnnxSegmenter
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "tiny_int8.onnx"
    assert quantize.main(["--model", tiny, "--calib", str(photos), "--out", str(out)]) == 0
    q, f = OnnxSegmenter(out, provider="cpu"), OnnxSegmenter(tiny, provider="cpu")
    assert q.meta.name == "tiny int8" and "static QDQ int8" in q.meta.extra["vbg.quantization"]
    assert q.meta.input_size_wh == f.meta.input_size_wh and q.meta.mean == f.meta.mean
    import onnx
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    frame, mask = red_person_frame()
    a, b = f.segment(frame), q.segment(frame)
    assert np.abs(a - b).mean() < 0.05 and ((a > 0.5) == (b > 0.5)).mean() > 0.98
    assert quantize.main(["--model", tiny, "--out", str(tmp_path / "x.onnx")]) == 2          # no --calib
    assert quantize.main(["--model", tiny, "--calib", str(tmp_path / "nope"), "--out", str(tmp_path / "x.onnx")]) == 2


@pytest.mark.parametrize("tail", ["softmax", "transposed", "sigmoid"])
def test_trim_tail_outputs_the_low_res_mask(tmp_path, tail):
    import numpy as np

    from tests.tinymodel import red_person_frame
    from vbg_app.tools import quantize
    from vbg_app.engines.onnx_engine import OnnxSegmenter
    src = _resize_tail_model(tmp_path / "tail.onnx", tail)
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "trim.onnx"
    assert quantize.main(["--model", str(src), "--calib", str(photos), "--out", str(out), "--trim-tail",
                          "--no-int8"]) == 0
    full, trim = OnnxSegmenter(src, provider="cpu"), OnnxSegmenter(out, provider="cpu")
    frame, _ = red_person_frame()
    a, b = full.segment(frame), trim.segment(frame)
    assert a.shape == (16, 32) and b.shape == (8, 16)
    assert 0 <= b.min() and b.max() <= 1 and b.max() > 0.9 and b.min() < 0.1
    up = cv2.resize(b, (32, 16), interpolation=cv2.INTER_LINEAR)
    assert ((a > 0.5) == (up > 0.5)).mean() > 0.95
    import onnx
    assert "Resize" not in {n.op_type for n in onnx.load(str(out)).graph.node}
    # without --calib the check runs on demo frames; a model without that tail is refused with the fix
    assert quantize.main(["--model", str(src), "--out", str(tmp_path / "t2.onnx"), "--trim-tail", "--no-int8"]) == 0
    tiny_path = make_model(tmp_path / "plain.onnx")
    assert quantize.main(["--model", str(tiny_path), "--out", str(tmp_path / "t3.onnx"), "--trim-tail", "--no-int8"]) == 2


def test_a_gpu_provider_that_silently_falls_back_is_not_reported_as_gpu(tiny, tmp_path, monkeypatch):
    """onnxruntime-gpu without its CUDA libraries builds a CPU session without an error: simulated here by
    offering cuda in a CPU-only build (onnxruntime then warns and runs on the CPU). The row must say it fell
    back, with no figures, and the cuda provider is not listed as usable."""
    import vbg_app.engines.onnx_engine as oe

    if "cuda" in available_providers():
        pytest.skip("this onnxruntime build has CUDA: the fallback cannot be provoked this way")
    monkeypatch.setattr(oe, "available_providers", lambda: ["cuda", "cpu"])
    opts = bench.BenchOptions(engines=bench.engine_specs("none", [tiny]), providers=["cuda", "cpu"], threads=[1],
                              sizes=[(160, 120)], frames=2, warmup=0, paced_fps=0, progress=False)
    doc = bench.run_bench(opts)
    by = {r["provider"]: r for r in doc["results"]}
    assert by["cuda"]["status"] == "unavailable" and "fell back to cpu" in by["cuda"]["reason"]
    assert by["cuda"]["pipeline"] is None and by["cuda"]["model"] is None and by["cuda"]["fix"]
    assert by["cpu"]["status"] == "ok"
    assert {p["provider"]: p["status"] for p in doc["providers"]}["cuda"] == "unavailable"
    table = bench.format_table(doc)
    assert "fell back to cpu" in table and not any(line.split()[1:2] == ["cuda"] and " ok" in line
                                                   for line in table.splitlines())


def test_the_notes_thread_split_is_the_pipelines():
    """bench's NOTES say which stages share a thread in Pipeline.run: a real run with stages that record the
    thread they ran in must group them the same way."""
    import threading

    from tests.fakes import CopyCompositor, CountingSource, EchoSegmenter, ListSink, PassFilter
    from vbg_app.pipeline import Pipeline
    from vbg_app.tools.bench_measure import STAGES
    from vbg_app.tools.bench_report import NOTES, THREADS

    seen: dict[str, set] = {}

    def mark(stage):
        seen.setdefault(stage, set()).add(threading.current_thread().name)

    class Src(CountingSource):
        def read(self):
            mark("capture")
            return super().read()

    class Seg(EchoSegmenter):
        def segment(self, frame):
            mark("inference")
            return super().segment(frame)

    class Filt(PassFilter):
        def update(self, prob, frame):
            mark("filter")
            return prob

    class Comp(CopyCompositor):
        def compose(self, frame, prob):
            mark("composite")
            return super().compose(frame, prob)

    class Sink(ListSink):
        def send(self, frame):
            mark("output")
            super().send(frame)

    Pipeline(Src(n=8), Seg(), Filt(), Comp(), Sink()).run(frames=8)
    assert all(len(names) == 1 for names in seen.values()), seen
    by_thread: dict[str, set] = {}
    for stage, (name,) in seen.items():
        by_thread.setdefault(name, set()).add(stage)
    assert sorted(map(sorted, by_thread.values())) == sorted(map(sorted, THREADS))
    assert set(STAGES) == {s for t in THREADS for s in t}
    assert " and ".join("+".join(t) for t in THREADS) in NOTES


def test_a_report_names_a_model_inside_the_current_folder_by_its_relative_path(tmp_path, monkeypatch):
    """A report committed from a checkout must not carry the machine's folders (docs/bench_results.json)."""
    from vbg_app.tools.bench_measure import report_path

    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.onnx"
    model.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert report_path(model) == "models/m.onnx" == report_path("models/m.onnx")
    elsewhere = tmp_path.parent / "other.onnx"
    assert report_path(elsewhere) == str(elsewhere.resolve())

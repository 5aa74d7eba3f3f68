"""The CPU budget tool (python -m vbg_app.tools.budget): every stage is accounted for, pictures compare."""
import numpy as np

from tests.tinymodel import make_model
from vbg_app.tools import budget
from vbg_app.compose import Compositor


def test_budget_times_every_stage_of_the_frame(tmp_path):
    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    r = budget.measure("connectnet", str(model), threads=1, size_wh=(256, 144), frames=3, warmup=1)
    names = set(r["stages"])
    for part in ("capture (demo rendering)", "segment: resize to model input", "segment: colour order + normalise",
                 "segment: inference (session.run)", "temporal filter", "compose (total)", "compose: blend",
                 "output (NullSink.send)"):
        assert part in names
    assert all(v["cpu_ms"] >= 0 for v in r["stages"].values())
    assert r["step_cpu_ms"] > 0 and r["run_cpu_ms"] > 0 and r["run_fps"] > 0
    text = budget.format_budget(r)
    assert "Pipeline.run(), two threads" in text and "temporal filter" in text


def test_budget_measures_the_pipeline_vbg_run_assembles(tmp_path, monkeypatch):
    """The budget's stages are the objects build_pipeline made (as vbg run makes them), not its own copies."""
    import vbg_app.assembly as assembly

    built = []
    real = assembly.build_pipeline

    def spy(config, **kw):
        pipe = real(config, **kw)
        built.append((config, pipe, pipe.compositor))
        return pipe

    monkeypatch.setattr(assembly, "build_pipeline", spy)
    stepped = []
    monkeypatch.setattr(Compositor, "compose", lambda self, *a, _real=Compositor.compose, **k: (
        stepped.append(self), _real(self, *a, **k))[1])
    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    budget.measure("connectnet", str(model), threads=1, size_wh=(256, 144), frames=2, warmup=1, background="color:#00ff00")
    (config, pipe, comp), = built
    assert config.sink == "null" and config.background == "color:#00ff00"
    assert stepped and all(c is comp for c in stepped)  # stage by stage, step() and run(): the built compositor
    assert pipe.segmenter is None  # closed with the pipeline at the end


def test_compose_timing_reports_cpu_for_the_same_steps():
    comp = Compositor("blur")
    frame = np.full((72, 128, 3), 90, np.uint8)
    comp.compose(frame, np.zeros((18, 32), np.float32), timing=True)
    assert set(comp.last_cpu_timings) == set(comp.last_timings) and "blend" in comp.last_cpu_timings
    assert all(v >= 0 for v in comp.last_cpu_timings.values())


def test_picture_diff_is_zero_for_the_same_picture_and_says_how_others_differ(tmp_path):
    rng = np.random.default_rng(0)
    out = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    mask = rng.random((3, 5, 8)).astype(np.float32)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, out=out, mask=mask)
    out2, mask2 = out.copy(), mask.copy()
    out2[1, 4, 5, 2] = out2[1, 4, 5, 2] ^ 0x40  # one channel of one pixel, 64 levels off
    mask2[2] = 1.0 - mask2[2]
    np.savez(b, out=out2, mask=mask2)
    same = budget.picture_diff(str(a), str(a))
    assert same["out_max"] == 0 and same["mask_max"] == 0 and same["mask_pct_flipped"] == 0
    d = budget.picture_diff(str(a), str(b))
    assert d["out_max"] == 64 and abs(d["out_pct_over_8"] - 100 / (3 * 20 * 30)) < 1e-9
    assert d["mask_pct_flipped"] > 20


def test_ort_options_measures_every_variant_with_the_same_outputs(tmp_path):
    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    res = budget.ort_options(str(model), runs=3)
    assert len(res) == 7 and "app (ENABLE_ALL, 1 thread, no spinning)" in res
    assert "app + IO binding, preallocated output" in res
    for v in res.values():
        assert v["cpu_ms"] >= 0 and v["max_diff"] < 1e-5


def test_bad_options_are_one_line_not_a_traceback(tmp_path, capsys):
    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    for args, words in ((["--background", "nonsense"], "unknown background 'nonsense'"),
                        (["--size", "12x"], "size"), (["--model", str(tmp_path / "missing.onnx")], "missing.onnx"),
                        (["picture", str(tmp_path / "p.npz"), "--background", "plaid"], "plaid")):
        extra = [] if "--model" in args else ["--model", str(model)]
        assert budget.main(args + extra + ["--frames", "1", "--warmup", "0"] * (args[0] != "picture")) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err and "Traceback" not in err, err


def test_the_budgets_mediapipe_split_is_the_engines_segment():
    """The budget times MediaPipe's segment() in parts with the engine's own steps (#16: framecache.shrink, its
    images left for the frame): the same mask as segment() and the same images cached."""
    import pytest

    pytest.importorskip("mediapipe")
    from vbg_app import framecache
    from vbg_app.engines import create_segmenter
    from vbg_app.sources import DemoSource

    seg = create_segmenter("mediapipe")
    try:
        frame = DemoSource(1280, 720, realtime=False).read()
        rows = {}
        prob = budget._split_segment(seg, frame, rows)
        assert framecache.get(frame, ("fit", (256, 144))) is not None and "segment: resize to model input" in rows
        np.testing.assert_array_equal(prob, seg.segment(frame.copy()))
    finally:
        seg.close()


def test_paced_budget_times_each_stage_in_each_mode_and_paces_the_frames(tmp_path):
    import time

    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    t0 = time.perf_counter()
    r = budget.paced("connectnet", str(model), threads=1, size_wh=(256, 144), fps=50.0, frames=3, rounds=3, warmup=1)
    wall = time.perf_counter() - t0
    assert set(r) == set(budget.PACED_MODES)
    for mode, st in r.items():
        assert {"capture (demo rendering)", "segment", "temporal filter", "compose", "total"} <= set(st)
        assert all(v >= 0 for v in st.values())
        assert st["total"] >= st["segment"]
    # two paced modes x 3 rounds x 3 frames, each holding its 20-ms slot
    assert wall >= 2 * 3 * 3 * 0.02 * 0.9


def test_paced_budget_refuses_an_impossible_pace(capsys):
    assert budget.main(["paced", "--fps", "0"]) == 2
    err = capsys.readouterr().err
    assert "--fps" in err and "Traceback" not in err


def test_saver_budget_runs_each_mode_on_the_clip_and_counts_the_model_runs(tmp_path, capsys):
    import cv2

    model = make_model(tmp_path / "m.onnx", size_wh=(64, 36))
    clip = tmp_path / "still.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (256, 144))
    frame = np.full((144, 256, 3), 90, np.uint8)
    frame[40:110, 90:160] = 200
    for _ in range(14):  # a still scene: the saver runs the model on every 3rd frame
        out.write(frame)
    out.release()
    r = budget.saver(str(clip), "connectnet", str(model), threads=1, rounds=2, warmup=2)
    assert list(r) == list(budget.SAVER_MODES)
    assert r["off"]["model_run_share"] is None and all(len(v["rounds"]) == 2 for v in r.values())
    assert all(v["cpu_ms"] > 0 for v in r.values())
    assert r["still only"]["model_run_share"] == r["still + carry"]["model_run_share"] == 4 / 12
    assert budget.main(["saver", str(clip), "--model", str(model), "--rounds", "1", "--warmup", "2"]) == 0
    assert "still + carry" in capsys.readouterr().out
    assert budget.main(["saver", str(tmp_path / "none.avi")]) == 2
    err = capsys.readouterr().err
    assert "none.avi" in err and "Traceback" not in err

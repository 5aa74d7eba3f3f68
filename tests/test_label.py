"""`vbg label`: teacher soft labels with tiny ONNX teachers of each kind (no ../shared needed)."""
import json

import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model
from vbg_app import cli
from vbg_app.tools.label import ModnetTeacher, fuse, fuse_with_gt


def _modnet_like(path):
    """Dynamic NCHW input, [N,1,H,W] output: sigmoid(4 * (R - B)) on the (x - 127.5) / 127.5 input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((1, 3, 1, 1), np.float32)
    w[0, 0], w[0, 2] = 4.0, -4.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W"], ["z"]), helper.make_node("Sigmoid", ["z"], ["output"])],
        "modnet_like", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _selfie_like(path, size=64):
    """NHWC [1,S,S,3] input (x / 255), [1,S,S,1] output: sigmoid(8 * (R - B))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.array([[8.0], [0.0], [-8.0]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])],
        "selfie_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size, size, 3])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, size, size, 1])],
        initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _scene(h=90, w=120, shift=0):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (200, 80, 20)                                     # blue room
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2 + shift, h // 2 + 10), (w // 5, h // 3), 0, 0, 360, 255, -1)
    img[mask > 0] = (20, 60, 220)                              # red person
    return img, mask


@pytest.fixture
def teachers(tmp_path):
    return {"modnet": _modnet_like(tmp_path / "modnet.onnx"), "selfie": _selfie_like(tmp_path / "selfie.onnx"),
            "vbg": make_model(tmp_path / "tiny.onnx", size_wh=(48, 32))}


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "val"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        img, mask = _scene(shift=5 * i)
        mask[:2] = 128  # an ignore strip
        cv2.imwrite(str(root / "images" / f"p{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"p{i}.png"), mask)
    video = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (120, 90))
    for i in range(6):
        vw.write(_scene(shift=2 * i)[0])
    vw.release()
    return root, video


def _argv(teachers, out, *extra):
    return ["label", "--teacher", f"modnet:{teachers['modnet']}@2", "--teacher", f"selfie:{teachers['selfie']}",
            "--teacher", f"vbg:{teachers['vbg']}", "--out", str(out), "--no-progress", "--threads", "1", *extra]


def test_labels_every_teacher_the_fusion_and_the_manifest(tmp_path, teachers, data, capsys):
    root, video = data
    out = tmp_path / "labels"
    assert cli.main(_argv(teachers, out, "--images", str(root), "--video", str(video), "--every", "2")) == 0
    assert "labelled 6, already done 0, failed 0" in capsys.readouterr().out
    labels = out / "labels"
    img, mask = _scene()
    for name in ("modnet", "selfie", "vbg", "fused", "fused_gt"):
        p = cv2.imread(str(labels / name / "val" / "p0.png"), cv2.IMREAD_GRAYSCALE)
        assert p.shape == mask.shape and p.dtype == np.uint8
        assert p[2:][mask[2:] > 0].mean() > 200                          # the red person is person
        assert p[2:][mask[2:] == 0].mean() < 40                          # the blue room is not
    assert sorted(q.name for q in (labels / "fused" / "clip").iterdir()) == ["00000.png", "00002.png", "00004.png"]
    assert not (labels / "fused_gt" / "clip").exists()                   # videos have no ground truth
    per = [cv2.imread(str(labels / n / "val" / "p1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
           for n in ("modnet", "selfie", "vbg")]
    fused = cv2.imread(str(labels / "fused" / "val" / "p1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    assert np.abs(fused - (2 * per[0] + per[1] + per[2]) / 4).max() <= 2.5 / 255  # weights 2:1:1, 8-bit rounding
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["name"] for t in manifest["teachers"]] == ["modnet", "selfie", "vbg"]
    assert all(len(t["sha256"]) == 64 and t["preprocessing"] for t in manifest["teachers"])
    assert manifest["teachers"][0]["weight"] == 2.0 and manifest["fusion"]["gt_band_px"] == 6
    assert not list(out.rglob(".*tmp*"))                                 # no temporary file left


def test_a_run_resumes_where_it_stopped(tmp_path, teachers, data, capsys):
    root, _ = data
    out = tmp_path / "labels"
    assert cli.main(_argv(teachers, out, "--images", str(root))) == 0
    (out / "labels" / "fused" / "val" / "p2.png").unlink()               # as if stopped before p2 was done
    capsys.readouterr()
    assert cli.main(_argv(teachers, out, "--images", str(root))) == 0
    assert "labelled 1, already done 2" in capsys.readouterr().out


def test_other_teachers_on_a_labelled_folder_are_refused(tmp_path, teachers, data, capsys):
    root, _ = data
    out = tmp_path / "labels"
    assert cli.main(_argv(teachers, out, "--images", str(root))) == 0
    other = ["label", "--teacher", f"selfie:{teachers['selfie']}", "--out", str(out), "--images", str(root),
             "--no-progress"]
    capsys.readouterr()
    assert cli.main(other) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other teachers" in err[0] and "--force" in err[0]
    assert cli.main(other + ["--force"]) == 0


@pytest.mark.parametrize("spec, text", [
    ("modnet", "KIND:PATH"), ("quantum:x.onnx", "KIND:PATH"), ("modnet:/nonexistent.onnx", "not found"),
    ("selfie:{tiny}", "not the selfie model"), ("modnet:{tiny}@-1", "positive"), ("modnet:{tiny}@x", "not a number"),
])
def test_bad_teachers_are_one_line_errors(spec, text, tmp_path, teachers, data, capsys):
    root, _ = data
    argv = ["label", "--teacher", spec.format(tiny=teachers["vbg"]), "--out", str(tmp_path / "o"), "--images",
            str(root), "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and text in err[0]


@pytest.mark.parametrize("wh, expected", [((550, 825), (320, 512)), ((1280, 720), (512, 288)),
                                          ((512, 512), (512, 512)), ((40, 30), (512, 384)), ((2000, 20), (512, 32))])
def test_modnet_input_size_long_side_512_multiples_of_32(wh, expected):
    assert ModnetTeacher.input_size(*wh) == expected


def test_fusion_rules():
    a, b = np.full((4, 4), 0.2, np.float32), np.full((4, 4), 0.8, np.float32)
    assert np.allclose(fuse([a, b], [1, 3]), 0.65)
    gt = np.zeros((40, 40), np.uint8)
    gt[10:30, 10:30] = 255
    gt[0, :] = 128
    teacher = np.full((40, 40), 0.3, np.float32)
    out = fuse_with_gt(teacher, gt, band=3)
    assert np.all(out[15:25, 15:25] == 1.0) and out[35, 35] == 0.0       # far from the outline: ground truth
    assert out[10, 20] == pytest.approx(0.3) and out[29, 20] == pytest.approx(0.3)  # on it: the teachers
    assert np.all(out[0] == pytest.approx(0.3))                           # ignore pixels: the teachers
    assert np.array_equal(fuse_with_gt(teacher, gt, band=0)[1:], (gt[1:] > 128).astype(np.float32))

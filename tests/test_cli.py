"""End to end through `vbg run`: a synthetic scene whose person mask is known, recorded to a file."""
import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model
from tests.util import read_frames
from vbg_app import cli


def _scene(h=240, w=320):
    """Red "person" (what the tiny model calls person) with a fine texture, on a textured blue background."""
    rng = np.random.default_rng(1)
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = (200, 60, 0)
    frame += rng.integers(0, 50, (h, w, 3), dtype=np.uint8)  # high-frequency texture everywhere
    mask = np.zeros((h, w), bool)
    cv2.ellipse(mask.view(np.uint8), (w // 2, h // 2 + 40), (60, 100), 0, 0, 360, 1, -1)
    person = np.array((0, 40, 200), np.uint8) + rng.integers(0, 50, (h, w, 3), dtype=np.uint8)
    frame[mask] = person[mask]
    return frame, mask


def _laplacian_var(img, region):
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F)
    return float(lap[region].var())


@pytest.mark.parametrize("smoothing", ["none", "flow", "steady"])
def test_run_blurs_the_background_and_keeps_the_person_sharp(tmp_path, capsys, smoothing):
    frame, mask = _scene()
    cv2.imwrite(str(tmp_path / "scene.png"), frame)
    model = make_model(tmp_path / "tiny.onnx", size_wh=(160, 120))
    out = tmp_path / "out.avi"  # MJPG: near-lossless enough to compare textures
    rc = cli.main(["run", "--source", f"image:{tmp_path / 'scene.png'}", "--background", "blur:30",
                   "--sink", f"file:{out}", "--frames", "12", "--model", str(model), "--smoothing", smoothing,
                   "--as-fast-as-possible", "--quiet"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "12 frames" in err and "cpu" in err
    frames = read_frames(out)
    assert len(frames) == 12 and frames[-1].shape == frame.shape
    result = frames[-1]
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    # the person keeps its fine texture and colour (up to codec error)
    assert _laplacian_var(result, inner) > 0.5 * _laplacian_var(frame, inner)
    assert np.abs(result[inner].mean(axis=0) - frame[inner].mean(axis=0)).max() < 4
    # the background lost its fine texture
    assert _laplacian_var(result, outer) < 0.1 * _laplacian_var(frame, outer)
    # and no red person bled into the blurred background around it
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool) & outer
    assert result[ring][:, 2].mean() < frame[~mask][:, 2].mean() + 15


def test_run_no_matte_lets_a_hole_in_the_person_through(tmp_path):
    """The matte stage (on by default) fills a small hole the model leaves in the person (a held object it
    does not believe in): over a key colour the patch shows the frame; --no-matte shows the key through it."""
    frame, mask = _scene()
    h, w = mask.shape
    cy, cx = h // 2 + 40, w // 2
    frame[cy - 7:cy + 7, cx - 7:cx + 7] = (200, 60, 0)  # background-coloured patch inside the "person"
    cv2.imwrite(str(tmp_path / "scene.png"), frame)
    model = make_model(tmp_path / "tiny.onnx", size_wh=(160, 120))
    green = {}
    for flags in ([], ["--no-matte"]):
        out = tmp_path / f"out{len(flags)}.avi"
        assert cli.main(["run", "--source", f"image:{tmp_path / 'scene.png'}", "--background", "color:#00ff00",
                         "--sink", f"file:{out}", "--frames", "3", "--model", str(model), "--as-fast-as-possible",
                         "--quiet", *flags]) == 0
        patch = read_frames(out)[-1][cy - 3:cy + 3, cx - 3:cx + 3].reshape(-1, 3).astype(int)
        green[bool(flags)] = float((patch[:, 1] - patch[:, [0, 2]].max(axis=1)).mean())  # how green it is
    assert green[False] < 0 < 150 < green[True], green


def test_run_to_the_virtual_camera_uses_the_backend(tmp_path, fake_vcam):
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    rc = cli.main(["run", "--source", "demo", "--size", "320x180", "--sink", "vcam", "--frames", "5",
                   "--model", str(model), "--as-fast-as-possible", "--quiet", "--background", "color:#00ff00"])
    assert rc == 0
    assert len(fake_vcam.frames) >= 5 and fake_vcam.frames[-1].shape == (180, 320, 3)


@pytest.mark.parametrize("argv, code, text", [
    (["run", "--source", "video:/nonexistent.mp4", "--sink", "null"], 2, "/nonexistent.mp4"),
    (["run", "--source", "camera:9", "--sink", "null"], 3, "camera 9"),
    (["run", "--background", "image:/nonexistent.jpg", "--sink", "null"], 2, "/nonexistent.jpg"),
    (["run", "--background", "color:#zz", "--sink", "null"], 2, "color"),
    (["run", "--sink", "ftp:x", "--source", "demo"], 2, "unknown sink"),
    (["run", "--size", "12", "--sink", "null"], 2, "WIDTHxHEIGHT"),
    (["run", "--provider", "quantum", "--sink", "null"], 2, "unknown provider"),
    (["run", "--frames", "0", "--sink", "null"], 2, "--frames"),
])
def test_bad_input_ends_with_one_line_and_an_exit_code(argv, code, text, capsys, tmp_path):
    model = make_model(tmp_path / "tiny.onnx")
    assert cli.main(argv + ["--model", str(model)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and text in err[0]


def test_a_model_without_metadata_is_refused_before_the_first_frame(tmp_path, capsys):
    model = make_model(tmp_path / "bare.onnx", meta=False)
    out = tmp_path / "o.mp4"
    assert cli.main(["run", "--model", str(model), "--sink", f"file:{out}", "--frames", "3"]) == 2
    assert "no vbg metadata" in capsys.readouterr().err
    assert not out.exists()  # nothing opened, nothing half-written


def test_devices_lists_providers_and_the_virtual_camera_state(capsys):
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "cpu" in out and "virtual camera:" in out and "cameras:" in out


def test_run_with_a_letterbox_model_keeps_a_portrait_frame_aligned(tmp_path):
    """A 2:3 portrait frame through a 16:9 vbg.fit = letterbox model: the mask lands on the person."""
    from tests.tinymodel import red_person_frame

    frame, mask = red_person_frame(h=360, w=240)
    cv2.imwrite(str(tmp_path / "portrait.png"), frame)
    model = make_model(tmp_path / "lb.onnx", size_wh=(128, 72), props={"vbg.fit": "letterbox"})
    out = tmp_path / "out.avi"
    rc = cli.main(["run", "--source", f"image:{tmp_path / 'portrait.png'}", "--background", "color:#00ff00",
                   "--sink", f"file:{out}", "--frames", "3", "--model", str(model), "--smoothing", "none",
                   "--as-fast-as-possible", "--quiet"])
    assert rc == 0
    result = read_frames(out)[-1]
    assert result.shape == frame.shape
    inner = cv2.erode(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert np.abs(result[inner].astype(int) - frame[inner].astype(int)).mean() < 12  # the person stays
    green = (result[outer][:, 1] > 200) & (result[outer][:, 0] < 60) & (result[outer][:, 2] < 60)
    assert green.mean() > 0.97  # everything around it became the green background


def _clip(path, n, size=(160, 90), fps=25):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((size[1], size[0], 3), 20 + 8 * i, np.uint8))
    vw.release()
    return path


def test_a_video_into_a_file_ends_by_itself_with_the_clips_frame_count(tmp_path, capsys):
    """The README's own example: no --frames, no --loop. Before, the clip looped and the file grew forever."""
    clip, out = _clip(tmp_path / "talk.avi", 17), tmp_path / "out.mp4"
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    rc = cli.main(["run", "--source", f"video:{clip}", "--sink", f"file:{out}", "--model", str(model),
                   "--frames", "200", "--quiet"])  # --frames only bounds the test if the source never ends
    assert rc == 0
    assert "17 frames (source ended)" in capsys.readouterr().err
    assert len(read_frames(out)) == 17


def test_loop_plays_a_video_again_until_frames(tmp_path, capsys):
    clip, out = _clip(tmp_path / "talk.avi", 7), tmp_path / "out.avi"
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    rc = cli.main(["run", "--source", f"video:{clip}", "--sink", f"file:{out}", "--model", str(model),
                   "--loop", "--frames", "20", "--as-fast-as-possible", "--quiet"])
    assert rc == 0
    assert "20 frames" in capsys.readouterr().err
    assert len(read_frames(out)) == 20


def test_help_says_how_a_video_ends(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--loop" in text and "A video plays once and the run ends at its end" in text


# -- --fps is a frame rate (issue #17, attack 8) ------------------------------------------------------------------
@pytest.mark.parametrize("fps", ["-1", "0", "0.001", "0.5", "241", "1e9", "nan", "NaN", "inf", "-inf", "abc", ""])
def test_fps_outside_1_to_240_or_not_a_number_is_refused_in_one_line(fps, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    model = make_model(tmp_path / "tiny.onnx")
    assert cli.main(["run", f"--fps={fps}", "--source", "demo", "--sink", f"file:{out}", "--frames", "2",
                     "--model", str(model), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: frame rate ") and "1 to 240" in err[0] and "--fps" in err[0]
    assert "disk" not in err[0] and not list(tmp_path.glob("o*"))  # refused before any file is opened


def test_fps_within_the_range_is_taken():
    from vbg_app.config import parse_fps

    assert [parse_fps(v) for v in ("1", "29.97", " 60 ", "240", 30)] == [1.0, 29.97, 60.0, 240.0, 30.0]
    assert cli.build_parser("run").parse_args(["run", "--fps", "15"]).fps == 15.0

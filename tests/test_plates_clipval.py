"""Background plates without a trace of the person (v4b) and the clip validation folder (issue #14)."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from vbg_app.errors import BadInput
from vbg_app.train.data import clipval, plates


def _brute_force_area(blocked: np.ndarray) -> int:
    h, w = blocked.shape
    best = 0
    for y0, x0 in itertools.product(range(h), range(w)):
        for y1 in range(y0 + 1, h + 1):
            for x1 in range(x0 + 1, w + 1):
                if not blocked[y0:y1, x0:x1].any():
                    best = max(best, (y1 - y0) * (x1 - x0))
    return best


@pytest.mark.parametrize("seed", range(8))
def test_largest_free_rect_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    blocked = rng.random((7, 9)) < 0.3
    r = plates.largest_free_rect(blocked)
    x0, y0, x1, y1 = r
    assert not blocked[y0:y1, x0:x1].any()
    assert (x1 - x0) * (y1 - y0) == _brute_force_area(blocked)


def test_largest_free_rect_all_blocked():
    assert plates.largest_free_rect(np.ones((4, 5), bool)) is None


def _photo(h=480, w=320):
    """A street-like photo whose person (a standing blob) is painted pure red: plates must hold no red."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    img[..., 2] = 0  # no red anywhere but the person
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 6, int(h * 0.45)), 0, 0, 360, 255, -1)
    img[mask > 0] = (0, 0, 255)
    return img, mask


def test_clean_plates_never_show_the_person():
    img, mask = _photo()
    out = plates.clean_plates(img, mask, min_side=40)
    assert 1 <= len(out) <= 3
    for p in out:
        assert min(p.shape[:2]) >= 40
        assert p[..., 2].max() == 0, "a plate shows part of the person"
    # largest first, and the left or right strip beside the person is found (about w/3 wide, full height)
    areas = [p.shape[0] * p.shape[1] for p in out]
    assert areas == sorted(areas, reverse=True)
    assert out[0].shape[0] > 0.8 * img.shape[0]


def test_clean_plates_none_when_the_person_fills_the_photo():
    img = np.zeros((200, 150, 3), np.uint8)
    mask = np.full((200, 150), 255, np.uint8)
    assert plates.clean_plates(img, mask) == []


def test_filled_plate_keeps_the_ghost_free_of_red_but_smooth():
    img, mask = _photo()
    p = plates.make_plate(img, mask)
    assert p.shape == img.shape
    assert p[..., 2].max() < 40  # the person is filled from its surroundings


def test_plates_command_is_resumable(tmp_path):
    src = tmp_path / "train"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    img, mask = _photo()
    for k in range(2):
        cv2.imwrite(str(src / "images" / f"p{k}.jpg"), img)
        cv2.imwrite(str(src / "masks" / f"p{k}.png"), mask)
    out = tmp_path / "plates"
    assert plates.main([str(src), "--out", str(out)]) == 0
    first = sorted(p.name for p in out.glob("*.jpg"))
    assert first and all("_p" in n for n in first)
    assert plates.main([str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.jpg")) == first


def _video(path, n=7, size=(64, 36)):
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), 30 * i, np.uint8))
    vw.release()


def test_clip_val_folder(tmp_path):
    video = tmp_path / "talk.avi"
    _video(video)
    labels = tmp_path / "fused" / "talk"
    labels.mkdir(parents=True)
    for i in (0, 3, 6):
        soft = np.zeros((36, 64), np.uint8)
        soft[:, : 10 * (i + 1)] = 200
        soft[0, 0] = 127  # below 0.5: background
        cv2.imwrite(str(labels / f"{i:05d}.png"), soft)
    out = tmp_path / "val"
    assert clipval.main([str(tmp_path / "fused"), str(video), "--out", str(out)]) == 0
    imgs = sorted(p.name for p in (out / "images").glob("*.jpg"))
    assert imgs == ["talk_00000.jpg", "talk_00003.jpg", "talk_00006.jpg"]
    m = cv2.imread(str(out / "masks" / "talk_00003.png"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(m)) == {0, 255}
    assert m[5, 39] == 255 and m[5, 40] == 0 and m[0, 0] == 0
    frame = cv2.imread(str(out / "images" / "talk_00003.jpg"))
    assert abs(float(frame.mean()) - 90) < 6  # frame 3, not frame 0


def test_clip_val_errors(tmp_path):
    video = tmp_path / "talk.avi"
    _video(video, n=3)
    with pytest.raises(BadInput, match="no labels"):
        clipval.write_clip_val(tmp_path / "none", [video], tmp_path / "out")
    labels = tmp_path / "fused" / "talk"
    labels.mkdir(parents=True)
    cv2.imwrite(str(labels / "00009.png"), np.zeros((36, 64), np.uint8))
    with pytest.raises(BadInput, match="ended before"):
        clipval.write_clip_val(tmp_path / "fused", [video], tmp_path / "out")

"""vbg_app/frames.py: the one set of frame and mask checks (to_bgr8's conversions are in test_sources.py)."""
import numpy as np
import pytest

from vbg_app.errors import BadInput
from vbg_app.frames import MAX_SIZE_WH, MIN_SIDE, check_frame, check_frame_size, check_mask


@pytest.mark.parametrize("shape", [(MIN_SIDE - 1, 64, 3), (64, MIN_SIDE - 1), (MAX_SIZE_WH[1] + 1, 64, 3)])
def test_check_frame_refuses_sizes_no_stage_takes_without_copying(shape):
    frame = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=shape, strides=(0,) * len(shape))
    with pytest.raises(BadInput, match=f"outside {MIN_SIDE}x{MIN_SIDE}"):
        check_frame(frame)


def test_check_frame_passes_a_usual_frame_as_is():
    frame = np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)
    assert check_frame(frame) is frame


def test_check_frame_size_names_the_fix():
    with pytest.raises(BadInput) as info:
        check_frame_size((8000, 100), "video big clip.mp4", "video", "big clip.mp4")
    assert "ffmpeg -i 'big clip.mp4' -vf scale=1920:-2 'big clip_1080p.mp4'" in info.value.one_line()
    with pytest.raises(BadInput, match="at least 16x16"):
        check_frame_size((10, 100), "demo", "size")


def test_check_mask_repairs_or_keeps_non_finite_values_and_names_who_sent_it():
    prob = np.array([[np.nan, np.inf], [-np.inf, 0.25]], np.float64)
    fixed = check_mask(prob)
    assert fixed.dtype == np.float32 and fixed.tolist() == [[0.0, 1.0], [0.0, 0.25]]
    kept = check_mask(prob, repair=False)
    assert kept.dtype == np.float32 and np.isnan(kept[0, 0])
    with pytest.raises(BadInput, match="the compositor got a mask of shape \\(2, 2, 2\\)"):
        check_mask(np.zeros((2, 2, 2), np.float32), who="the compositor got")
    with pytest.raises(BadInput, match="the segmenter returned a mask of shape list"):
        check_mask([[0.5]])

"""Shared fixtures and marker rules. Keep this small; helpers live in their own modules (tests/fakes.py,
tests/fakecam.py, tests/tinymodel.py)."""
import os
from pathlib import Path

import pytest

from tests.fakecam import FakeVirtualCamera, installed

# ../shared beside the repository (data sets and reference models; never part of the project).
# VBG_SHARED points elsewhere, e.g. VBG_SHARED=/nonexistent to run the suite as a machine without it would.
SHARED = Path(os.environ.get("VBG_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def pytest_runtest_setup(item):
    """Tests marked ``shared`` skip, with one reason, when the shared folder is absent."""
    if item.get_closest_marker("shared") is not None and not SHARED.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED} (absent)")


@pytest.fixture
def fake_vcam():
    """A fake pyvirtualcam backend (the only one registered during the test); yields the recorder:
    ``.frames`` (BGR frames received), ``.count``, ``.fourcc``, ``.width``/``.height``/``.fps``, ``.device``."""
    rec = FakeVirtualCamera()
    with installed(rec):
        yield rec

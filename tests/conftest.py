"""Shared fixtures. Keep this small; helpers live in their own modules (tests/fakecam.py, tests/tinymodel.py)."""
import pytest

from tests.fakecam import FakeVirtualCamera, installed


@pytest.fixture
def fake_vcam():
    """A fake pyvirtualcam backend (the only one registered during the test); yields the recorder:
    ``.frames`` (BGR frames received), ``.count``, ``.fourcc``, ``.width``/``.height``/``.fps``, ``.device``."""
    rec = FakeVirtualCamera()
    with installed(rec):
        yield rec

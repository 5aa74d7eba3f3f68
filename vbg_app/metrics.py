"""Moved to :mod:`vbg_app.tools.metrics` (#18). This alias stays only while the v4 training runs started before
the move are running: the loop.py they loaded imports ``vbg_app.metrics`` when it validates. Delete it once
those runs have restarted (their next ``--resume`` loads the new loop.py)."""
from vbg_app.tools.metrics import *  # noqa: F401,F403
from vbg_app.tools.metrics import SegAccumulator  # noqa: F401  (the name the old loop.py imports)

"""``python -m vbg_app.train --config ...``: the same as ``vbg train`` (see :mod:`vbg_app.train.cli`)."""
import sys

from vbg_app.train.cli import main

sys.exit(main())

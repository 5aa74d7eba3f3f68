"""``python -m vbg_app`` = ``vbg``."""
import sys

from vbg_app.cli import main

sys.exit(main())

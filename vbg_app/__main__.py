"""``python -m vbg_app`` = ``vbg``."""
import sys

try:
    from vbg_app.cli import main
except KeyboardInterrupt:  # Ctrl+C while Python loads vbg: 130, no traceback (as vbg_app.cli itself does)
    raise SystemExit(130) from None

sys.exit(main())

"""``python -m vbg_app.gui`` = ``vbg-gui`` = ``vbg gui``."""
import sys

from vbg_app.gui import main

sys.exit(main())

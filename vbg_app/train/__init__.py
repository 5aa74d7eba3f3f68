"""Training and export of ConnectNet (PyTorch). Only `vbg train` and `vbg export` import it (through the
CLI's lazy command table); the frame path (vbg run, the GUI) never does."""

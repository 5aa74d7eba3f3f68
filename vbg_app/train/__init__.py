"""Training and export of ConnectNet (PyTorch). The app never imports this package."""

"""vbg — real-time virtual background for video meetings."""
__version__ = "0.1.0"

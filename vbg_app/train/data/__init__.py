"""Training data: sources (folders, PaddleSeg list files, videos), PP-HumanSeg-style synthesis, augmentation.

numpy/OpenCV only, except the ``torch.utils.data.Dataset`` wrappers (torch is imported when they are used).
See :mod:`.datasets` for the source formats, :mod:`.synthesis` for webcam framing / backgrounds /
occluders and :mod:`.augment` for the geometric and photometric primitives.
"""
from vbg_app.train.data.augment import IGNORE, Photometric, to_input
from vbg_app.train.data.datasets import (PortraitDataset, Source, ValDataset, folder_source, label_to_metric,
                                         list_source, open_source, read_label, video_source)
from vbg_app.train.data.synthesis import GENERATORS, BackgroundBank, Synthesizer, draw_occluder

__all__ = ["IGNORE", "Photometric", "to_input", "PortraitDataset", "ValDataset", "Source", "folder_source",
           "list_source", "video_source", "open_source", "read_label", "label_to_metric", "Synthesizer",
           "BackgroundBank", "GENERATORS", "draw_occluder"]

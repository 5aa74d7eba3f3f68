"""Tools beside the real-time frame path: measuring (bench, stagebench, budget, soak), scoring (evaluate, metrics,
gt_video, demo_gt, temporal_lab), labelling (label) and model copies (quantize). The frame path (sources,
engines, temporal, compose, sinks, pipeline) never imports this package; ``vbg eval``/``bench``/``quantize``/
``label`` import their own module only when that command runs."""

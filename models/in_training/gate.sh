#!/usr/bin/env bash
# Usage: models/in_training/gate.sh TAG CKPT_SC CKPT_NOSC [LIMIT]   (issue #14, removed when v4 ships) — export 256x144 + 398x224 candidates and run one vbg eval
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repository root
tag=$1; sc=$2; nosc=$3; lim=${4:-}
out=runs/gate/$tag; mkdir -p $out
for n in sc nosc; do
  ck=$sc; [ $n = nosc ] && ck=$nosc
  .venv/bin/vbg export --checkpoint $ck --size 256x144 --fit letterbox --version 4 --out $out/v4_${n}_256x144.onnx >/dev/null
  .venv/bin/vbg export --checkpoint $ck --size 398x224 --fit letterbox --version 4 --out $out/v4_${n}_398x224.onnx >/dev/null
done
args=()
[ -n "$lim" ] && args=(--limit $lim)
S=../shared
.venv/bin/vbg eval --threads 1 \
  --data $S/data/portraits/ccp/val --data $S/data/portraits/humanseg290/val --data $S/data/portraits/upper_body/val \
  --video $S/data/videos/talking_head_1.mp4 --video $S/data/videos/talking_head_2.mp4 --video $S/data/videos/talking_head_3.mp4 \
  --teacher-labels runs/labels_clips --gt-video runs/gt_videos --demo 30 \
  --model runs/released_lb.onnx --model models/connectnet.onnx --model models/connectnet_256x144.onnx --engine mediapipe \
  --model $out/v4_sc_256x144.onnx --model $out/v4_sc_398x224.onnx --model $out/v4_nosc_256x144.onnx --model $out/v4_nosc_398x224.onnx \
  --json $out/eval.json "${args[@]}" > $out/eval.txt 2>&1
echo done $out

#!/usr/bin/env bash
# Usage: models/in_training/gate.sh TAG LABEL=CHECKPOINT [LABEL=CHECKPOINT ...]   (issue #14, removed when v4 ships)
#   e.g. gate.sh s6 v4b=runs/connectnet_v4b_256x144/last.pt v4c=runs/connectnet_v4c_256x144/last.pt
# Exports each checkpoint at every size of $SIZES (default 256x144; e.g. SIZES="256x144 398x224") with the
# engine's letterbox ($FIT=aspect: at each frame's own aspect) and runs the whole #14 gate in one vbg eval beside the released file, v1, v1 at 256x144 and
# MediaPipe: three val sets, the three clips (flicker, agreement with the teacher fusion), the exact-GT videos,
# the demo portrait. $LIMIT (optional) caps images per set. Results: runs/gate/TAG/eval.{txt,json}.
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repository root
tag=$1; shift
out=runs/gate/$tag; mkdir -p "$out"
models=()
for spec in "$@"; do
  label=${spec%%=*}; ck=${spec#*=}
  for size in ${SIZES:-256x144}; do
    .venv/bin/vbg export --checkpoint "$ck" --size "$size" --fit "${FIT:-letterbox}" --version 4 --out "$out/${label}_${size}.onnx" >/dev/null
    models+=(--model "$out/${label}_${size}.onnx")
  done
done
args=()
[ -n "${LIMIT:-}" ] && args=(--limit "$LIMIT")
S=../shared
.venv/bin/vbg eval --threads 1 \
  --data $S/data/portraits/ccp/val --data $S/data/portraits/humanseg290/val --data $S/data/portraits/upper_body/val \
  --video $S/data/videos/talking_head_1.mp4 --video $S/data/videos/talking_head_2.mp4 --video $S/data/videos/talking_head_3.mp4 \
  --teacher-labels runs/labels_clips --gt-video runs/gt_videos --demo 30 \
  --model runs/released_lb.onnx --model models/connectnet.onnx --model models/connectnet_256x144.onnx --engine mediapipe \
  "${models[@]}" --json "$out/eval.json" "${args[@]}" > "$out/eval.txt" 2>&1
echo "done $out"

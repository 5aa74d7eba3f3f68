#!/usr/bin/env bash
# One v4 run chain (issue #14): stage 1 (256x144, 160k samples) then stage 2 (398x224, from stage 1's last.pt).
# Usage: runs/v4_chain.sh connectnet_v4_256x144 connectnet_v4          (the SC run)
#        runs/v4_chain.sh connectnet_v4_256x144_nosc connectnet_v4_nosc (the ablation)
# Each stage resumes from runs/<name>/last.pt when it exists (a finished stage returns at once), so the same
# command starts, continues after a restart, and moves on to stage 2. A stage stopped by SIGTERM exits 143
# (last.pt written) and the chain stops there.
set -u
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"   # the repository root (the script sits in runs/ or models/in_training/)
# setsid puts this chain in its own scheduler autogroup, where `nice` only ranks it against itself: lower the
# whole group too, so that tests and benchmarks get the CPU first (Linux autogroups; ignored where absent)
echo 19 > /proc/self/autogroup 2>/dev/null || true
for name in "$@"; do
  resume=()
  [ -f "runs/$name/last.pt" ] && resume=(--resume)
  mkdir -p "runs/$name"
  echo "$(date -u +%FT%TZ) start $name ${resume[*]:-}" >> "runs/$name/stdout.log"
  .venv/bin/vbg train --config "vbg_app/train/configs/$name.yaml" --quiet "${resume[@]}" >> "runs/$name/stdout.log" 2>&1
  rc=$?
  echo "$(date -u +%FT%TZ) exit $rc $name" >> "runs/$name/stdout.log"
  [ $rc -eq 0 ] || exit $rc
done

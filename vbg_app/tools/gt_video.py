"""Exact-ground-truth meeting videos: a val person moving over a real room, with per-frame masks and motion.

Example::

    python -m vbg_app.tools.gt_video --out runs/gt_videos --data ../shared/data/portraits/ccp/val \\
        --data ../shared/data/portraits/humanseg290/val --clips 4 --frames 150 --seed 0
    vbg eval --gt-video runs/gt_videos --model models/connectnet.onnx

Each clip composites a person cut out of a val photo with its GT mask over a *room*: another val photo, cropped
to 16:9, with its own person filled in (the GT mask dilated by ``ROOM_HOLE_PX``; the colour of a push-pull
pyramid fill, see :func:`~vbg_app.tools.gt_sources.fill_holes`; rooms whose person covers over ``ROOM_MAX_PERSON`` of the crop are
skipped). The person is placed like a webcam shows a meeting participant:
head near the top, the torso cut by the bottom edge (the pivot of every lean lies on the bottom edge). It
moves through four phases (fractions of the clip): a *sway* (0-25 %: a slow side-to-side sway with a slight
tilt), a *fast lean* (25-40 %: a quick lean to one side about the pivot, held, and back; these frames are
flagged ``fast``), a *zoom* (40-62 %: leaning in towards the camera, up to ``zoom`` x, and back) and a
*partial exit* (62-100 %: the person slides out at one side until about ``exit_fraction`` of them is out of
frame, and back in).

Rendering (per frame, float32, then rounded once): ``alpha`` = the source mask warped by the frame's affine
(bilinear) and blurred by a Gaussian of ``EDGE_SIGMA`` px (an anti-aliased edge under 1 px wide); the colour
is the source photo warped the same way, with its person colours pushed a few pixels out past the mask so no
trace of the photo's own background enters the edge. ``frame = alpha * person + (1 - alpha) * room`` plus
Gaussian sensor noise (``noise`` levels, new every frame). Moving frames get motion blur (when the person
moves more than half a pixel during the exposure): the shutter (``--shutter``, half a frame interval by
default) is sampled at several sub-frame poses and colour and alpha are averaged (premultiplied). The GT mask is ``alpha >= 0.5``; the frame's ``affine`` is its mid-exposure pose.

Stored per clip (``DIR/clip_NN/``): ``frames.mkv`` (FFV1, lossless: every decoded frame is bit-identical to
the rendered one, and ``clip.json`` keeps each frame's md5 so a reader can check that), ``masks/NNNNNN.png``
(0/255), ``alpha/NNNNNN.png`` (0..255 soft alpha), ``plate.png`` (the room alone, the clean background),
``clip.json`` (sources, parameters, and per frame: phase, 2x3 affine from the person's source coordinates to
frame coordinates, ``fast``, speed in px/frame (of any point of the source mask, parts outside the frame
included), md5); ``DIR/manifest.json`` lists the clips with the seed
and the parameters. Everything is deterministic given the inputs and ``--seed``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, run_command
from vbg_app.tools.gt_clips import SCHEMA, frame_md5
from vbg_app.tools.gt_sources import (ROOM_HOLE_PX, ROOM_MAX_PERSON, Person, Photo, find_photos, make_room,
                                      prepare_person)

ROOT_SCHEMA = "vbg.gt_videos/1"
DEFAULT_SIZE = (640, 360)
DEFAULT_FRAMES = 150
DEFAULT_FPS = 30.0
DEFAULT_CLIPS = 4
DEFAULT_NOISE = 2.0
EDGE_SIGMA = 0.5          # px, Gaussian blur of the warped mask: the soft alpha edge
SHUTTER = 0.5             # exposure, as a fraction of the frame interval (motion blur)
MAX_BLUR_SAMPLES = 9
PHASES = (("sway", 0.0), ("lean", 0.25), ("zoom", 0.40), ("exit", 0.62))
VIDEO_NAME = "frames.mkv"
CODECS = (("FFV1", VIDEO_NAME, "FFV1 (lossless)"), ("png ", "frames.avi", "PNG in AVI (lossless)"))
DEFAULT_DATA = ("data/portraits/ccp/val", "data/portraits/humanseg290/val")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the clips (created)")
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="labelled val folder with images/ and masks/ (repeatable; persons are taken from "
                             "each in turn, rooms from all; default: ../shared's ccp/val and humanseg290/val)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, help=f"number of clips (default {DEFAULT_CLIPS})")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"frames per clip (default {DEFAULT_FRAMES}; at least 20)")
    parser.add_argument("--size", default="%dx%d" % DEFAULT_SIZE, help="frame size WxH (default 640x360)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frame rate (default 30)")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help=f"sensor noise, std in levels (default {DEFAULT_NOISE}; 0 = none)")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME",
                        help="leave out the photo with this file name or stem, as person and as room (repeatable; "
                             "e.g. a room with unlabelled passers-by; recorded in the manifest)")
    parser.add_argument("--shutter", type=float, default=SHUTTER,
                        help=f"exposure as a fraction of the frame interval, for motion blur (default {SHUTTER}; "
                             "0 = sharp frames)")
    parser.add_argument("--force", action="store_true", help="replace clips already in --out")


# -- motion ----------------------------------------------------------------------------------------------
def _smooth(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


@dataclass
class Motion:
    n: int
    fps: float
    size_wh: tuple[int, int]
    x_offset: float
    sway_px: float
    sway_deg: float
    sway_cycles: int
    lean_deg: float
    lean_px: float
    lean_ramp: int
    lean_hold: int
    zoom: float
    zoom_center_y: float
    exit_px: float
    bounds: dict = field(default_factory=dict)

    @classmethod
    def random(cls, n: int, fps: float, size_wh: tuple[int, int], person: Person, rng: np.random.Generator,
               exit_fraction: float) -> "Motion":
        w, h = size_wh
        starts = [int(round(f * n)) for _, f in PHASES] + [n]
        bounds = {name: (starts[i], starts[i + 1]) for i, (name, _) in enumerate(PHASES)}
        lean_len = bounds["lean"][1] - bounds["lean"][0]
        ramp = max(1, min(int(round(0.2 * fps)), (lean_len - 1) // 2))   # 0.2 s out, 0.15 s held, 0.2 s back
        hold = max(0, min(int(round(0.15 * fps)), lean_len - 1 - 2 * ramp))  # ends inside the phase
        side = 1.0 if rng.random() < 0.5 else -1.0
        exit_side = 1.0 if rng.random() < 0.5 else -1.0
        x_off = float(rng.uniform(-0.06, 0.06) * w)
        # the person's centre ends (exit_fraction - 0.5) of its width past the frame edge
        edge = w / 2 - exit_side * x_off
        exit_px = exit_side * (edge + (exit_fraction - 0.5) * person.width_px)
        sway_len = bounds["sway"][1] - bounds["sway"][0]
        return cls(n=n, fps=fps, size_wh=size_wh, x_offset=x_off,
                   sway_px=float(rng.uniform(0.015, 0.03) * w), sway_deg=float(rng.uniform(0.5, 1.5)),
                   sway_cycles=max(1, int(round(sway_len / (1.6 * fps)))),
                   lean_deg=float(side * rng.uniform(8.0, 12.0)), lean_px=float(side * rng.uniform(0.05, 0.09) * w),
                   lean_ramp=ramp, lean_hold=hold, zoom=float(rng.uniform(1.15, 1.3)),
                   zoom_center_y=float(rng.uniform(0.3, 0.45) * h), exit_px=float(exit_px), bounds=bounds)

    def phase(self, k: int) -> str:
        for name, (a, b) in self.bounds.items():
            if a <= k < b:
                return name
        return "exit"

    def pose(self, t: float) -> tuple[float, float, float, float]:
        """``(dx, dy, degrees, zoom)`` at time ``t`` (frames, fractional for motion blur)."""
        dx = dy = deg = 0.0
        zoom = 1.0
        a, b = self.bounds["sway"]
        if t < b:
            u = 2 * math.pi * self.sway_cycles * max(0.0, t - a) / max(1, b - 1 - a)  # at rest on its last frame
            dx, deg, dy = self.sway_px * math.sin(u), self.sway_deg * math.sin(u), 2.0 * math.sin(2 * u)
            return dx, dy, deg, zoom
        a, b = self.bounds["lean"]
        if t < b:
            u = t - a
            r, hold = self.lean_ramp, self.lean_hold
            f = _smooth(u / r) if u < r else (1.0 if u <= r + hold else 1.0 - _smooth((u - r - hold) / r))
            return self.lean_px * f, 0.0, self.lean_deg * f, zoom
        a, b = self.bounds["zoom"]
        if t < b:
            u = (t - a) / max(1, b - 1 - a)
            return 0.0, 0.0, 0.0, 1.0 + (self.zoom - 1.0) * 0.5 * (1.0 - math.cos(2 * math.pi * u))
        a, b = self.bounds["exit"]
        u = (t - a) / max(1, b - 1 - a)
        f = _smooth(u / 0.4) if u < 0.4 else (1.0 if u < 0.6 else 1.0 - _smooth((u - 0.6) / 0.4))
        return self.exit_px * f, 0.0, 0.0, zoom

    def affine(self, person: Person, t: float) -> np.ndarray:
        """2x3 affine from the person's (prescaled) source coordinates to frame coordinates at time ``t``."""
        w, h = self.size_wh
        dx, dy, deg, zoom = self.pose(t)
        px, py = w / 2 + self.x_offset, float(h)
        s = person.scale
        base = np.array([[s, 0, px - s * person.pivot[0]], [0, s, py - s * person.pivot[1]], [0, 0, 1]])
        rot = np.vstack([cv2.getRotationMatrix2D((px, py), -deg, 1.0), (0, 0, 1)])  # + = clockwise lean
        move = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)
        cx, cy = px + dx, self.zoom_center_y
        zm = np.array([[zoom, 0, cx * (1 - zoom)], [0, zoom, cy * (1 - zoom)], [0, 0, 1]])
        return (zm @ move @ rot @ base)[:2]

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("x_offset", "sway_px", "sway_deg", "sway_cycles", "lean_deg", "lean_px",
                                           "lean_ramp", "lean_hold", "zoom", "zoom_center_y", "exit_px")}
        d["phases"] = {k: list(v) for k, v in self.bounds.items()}
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def _transform(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ a[:, :2].T + a[:, 2]


def _cut_visible(person: Person, affines: list[np.ndarray], size_wh: tuple[int, int]) -> bool:
    """True when a point where the person touches the source photo's border lands inside the frame in any
    frame (the photo's cut would show as a straight edge)."""
    if not len(person.border_pts):
        return False
    w, h = size_wh
    for a in affines:
        p = _transform(a, person.border_pts)
        if np.any((p[:, 0] > 1) & (p[:, 0] < w - 2) & (p[:, 1] > 1) & (p[:, 1] < h - 2)):
            return True
    return False


def _speed(person: Person, a_prev: np.ndarray, a_cur: np.ndarray, pts: np.ndarray) -> float:
    if a_prev is None or not len(pts):
        return 0.0
    return float(np.max(np.linalg.norm(_transform(a_cur, pts) - _transform(a_prev, pts), axis=1)))


# -- rendering --------------------------------------------------------------------------------------------
def render(person: Person, room: np.ndarray, affines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(frame float32 HxWx3 before noise, alpha float32 HxW)``: the person over ``room``, averaged over the
    sub-frame poses ``affines`` (motion blur; one pose = a sharp frame)."""
    h, w = room.shape[:2]
    acc_a = np.zeros((h, w), np.float32)
    acc_c = np.zeros((h, w, 3), np.float32)
    for a in affines:
        al = cv2.warpAffine(person.alpha, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        al = cv2.GaussianBlur(al, (0, 0), EDGE_SIGMA)
        col = cv2.warpAffine(person.color, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        acc_a += al
        acc_c += col * al[:, :, None]
    k = np.float32(len(affines))
    alpha = np.clip(acc_a / k, 0.0, 1.0)
    frame = acc_c / k + (1.0 - alpha)[:, :, None] * room.astype(np.float32)
    return frame, alpha


def _open_writer(folder: Path, fps: float, size_wh: tuple[int, int]):
    for fourcc, name, desc in CODECS:
        path = folder / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size_wh)
        if writer.isOpened():
            return writer, name, desc
        writer.release()
        path.unlink(missing_ok=True)
    raise BadInput("this OpenCV can write no lossless video (FFV1 or PNG)",
                   "install opencv-python (its FFmpeg has FFV1) and run again")



def build_clip(folder: Path, person: Person, room: np.ndarray, room_info: dict, motion: Motion,
               noise: float, seed: int, fps: float, progress=None, shutter: float = SHUTTER) -> dict:
    """Render one clip into ``folder``; returns its clip.json dict."""
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    (folder / "alpha").mkdir(exist_ok=True)
    w, h = motion.size_wh
    cv2.imwrite(str(folder / "plate.png"), room)
    rng = np.random.default_rng([seed, 1])
    writer, video_name, codec = _open_writer(folder, fps, (w, h))
    ys, xs = np.nonzero(person.alpha > 0.5)
    contour = np.stack([xs, ys], 1)[:: max(1, len(xs) // 4000)].astype(np.float64)
    frames = []
    prev_a = None
    try:
        for k in range(motion.n):
            a = motion.affine(person, k)
            speed = _speed(person, prev_a, a, contour)
            # motion blur: sample the shutter at sub-frame poses when the person moves over 1 px per frame
            n_sub = 1 if speed * shutter <= 0.5 else min(MAX_BLUR_SAMPLES, 1 + int(math.ceil(speed * shutter)))
            subs = [a] if n_sub == 1 else [motion.affine(person, k + shutter * (j / (n_sub - 1) - 0.5))
                                           for j in range(n_sub)]
            img, alpha = render(person, room, subs)
            if noise > 0:
                img += rng.normal(0.0, noise, img.shape).astype(np.float32)
            frame = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            mask = alpha >= 0.5
            writer.write(frame)
            cv2.imwrite(str(folder / "masks" / f"{k:06d}.png"), mask.view(np.uint8) * 255)
            cv2.imwrite(str(folder / "alpha" / f"{k:06d}.png"), np.rint(alpha * 255).astype(np.uint8))
            phase = motion.phase(k)
            frames.append({"index": k, "phase": phase, "affine": [[round(float(v), 6) for v in row] for row in a],
                           "fast": bool(phase == "lean" and speed > 0.5), "speed_px": round(speed, 3),
                           "blur_samples": n_sub, "md5": frame_md5(frame),
                           "touches_border": [bool(mask[:, 0].any()), bool(mask[:, -1].any()),
                                              bool(mask[0].any()), bool(mask[-1].any())]})
            prev_a = a
            if progress is not None:
                progress.update(1)
    finally:
        writer.release()
    return {
        "schema": SCHEMA, "name": folder.name, "size_wh": [w, h], "fps": fps, "n_frames": motion.n,
        "video": video_name, "codec": codec, "masks": "masks/%06d.png", "alpha": "alpha/%06d.png",
        "plate": "plate.png", "seed": seed,
        "person": {"image": str(person.photo.image), "mask": str(person.photo.mask), "dataset": person.photo.dataset,
                   "prescale": round(person.prescale, 6), "scale": round(person.scale, 6),
                   "visible_fraction": round(person.visible, 4),
                   "pivot_src": [round(person.pivot[0], 3), round(person.pivot[1], 3)]},
        "room": room_info,
        "motion": motion.as_dict(),
        "render": {"edge_sigma_px": EDGE_SIGMA, "noise_sigma": noise, "shutter": shutter,
                   "max_blur_samples": MAX_BLUR_SAMPLES, "gt": "alpha >= 0.5",
                   "affine": "source (after prescale) -> frame, mid-exposure pose"},
        "frames": frames,
    }


def _pick_person(candidates: list[Photo], size_wh, rng, motion_args, used: set) -> tuple[Person, Motion] | None:
    order = rng.permutation(len(candidates))
    for i in order:
        photo = candidates[int(i)]
        if photo.image in used:
            continue
        person = prepare_person(photo, size_wh)
        vis = None if person is None else person.visible
        while person is not None:
            motion = Motion.random(person=person, rng=np.random.default_rng(rng.integers(2 ** 32)), **motion_args)
            affines = [motion.affine(person, k) for k in range(motion.n)]
            if not _cut_visible(person, affines, size_wh):
                return person, motion
            vis -= 0.05  # show less of the person (bigger, cut higher) until the photo's edge stays out of view
            person = prepare_person(photo, size_wh, visible=vis) if vis >= 0.3 else None
    return None


def build(out: Path, folders: list[Path], clips: int = DEFAULT_CLIPS, frames: int = DEFAULT_FRAMES,
          size_wh: tuple[int, int] = DEFAULT_SIZE, fps: float = DEFAULT_FPS, seed: int = 0,
          noise: float = DEFAULT_NOISE, force: bool = False, progress: bool = True,
          exclude: tuple[str, ...] = (), shutter: float = SHUTTER) -> dict:
    """Build ``clips`` clips into ``out``; returns the manifest (also written to ``out/manifest.json``)."""
    if clips < 1:
        raise BadInput(f"--clips {clips} must be at least 1", "give a positive number of clips")
    if frames < 20:
        raise BadInput(f"--frames {frames} is too few for the four motion phases", "use at least 20 frames")
    if fps <= 0:
        raise BadInput(f"--fps {fps} must be positive", "use e.g. 30")
    if not 0 <= shutter <= 1:
        raise BadInput(f"--shutter {shutter} is outside 0..1", "use e.g. 0.5 (half the frame interval) or 0")
    if noise < 0:
        raise BadInput(f"--noise {noise} must not be negative", "use 0 for none, e.g. 2 for mild noise")
    out = Path(out)
    if (out / "manifest.json").exists() and not force:
        raise BadInput(f"{out} already holds GT videos", "choose another --out or add --force")
    excluded = set(exclude)
    pools = [[p for p in pool if p.image.name not in excluded and p.image.stem not in excluded]
             for pool in find_photos(folders)]
    all_photos = [p for pool in pools for p in pool]
    rng = np.random.default_rng(seed)
    from tqdm import tqdm

    # choose every clip's person, motion and room first, so a shortage fails before any rendering
    plans, used_people, used_rooms = [], set(), set()
    for c in range(clips):
        pool = pools[c % len(pools)]
        exit_fraction = float(rng.uniform(0.35, 0.5))
        motion_args = {"n": frames, "fps": fps, "size_wh": size_wh, "exit_fraction": exit_fraction}
        picked = _pick_person(pool, size_wh, rng, motion_args, used_people)
        if picked is None:
            picked = _pick_person(all_photos, size_wh, rng, motion_args, used_people)
        if picked is None:
            raise BadInput(f"no usable person left for clip {c} in {', '.join(map(str, folders))} (a single "
                           "person, over 3 % of the photo, head inside the photo)", "add more val photos or ask fewer --clips")
        person, motion = picked
        used_people.add(person.photo.image)
        room = None
        for i in rng.permutation(len(all_photos)):
            photo = all_photos[int(i)]
            if photo.image == person.photo.image or photo.image in used_rooms:
                continue
            room = make_room(photo, size_wh)
            if room is not None:
                used_rooms.add(photo.image)
                break
        if room is None:
            raise BadInput(f"no usable room photo left for clip {c} (each other photo is used or over "
                           f"{ROOM_MAX_PERSON:.0%} person)", "add more val photos or ask fewer --clips")
        plans.append((person, motion, room, int(rng.integers(2 ** 31))))

    out.mkdir(parents=True, exist_ok=True)
    manifest_clips = []
    bar = tqdm(total=clips * frames, desc="gt videos", unit="frame", file=sys.stderr, disable=None if progress else True,
               leave=False)
    try:
        for c, (person, motion, (plate, room_info), clip_seed) in enumerate(plans):
            name = f"clip_{c:02d}"
            meta = build_clip(out / name, person, plate, room_info, motion, noise, clip_seed, fps, progress=bar,
                              shutter=shutter)
            (out / name / "clip.json").write_text(json.dumps(meta, indent=1) + "\n")
            manifest_clips.append({"name": name, "person": meta["person"]["image"], "room": room_info["image"],
                                   "n_frames": frames, "n_fast": sum(f["fast"] for f in meta["frames"])})
    finally:
        bar.close()
    manifest = {"schema": ROOT_SCHEMA, "builder": "vbg_app.tools.gt_video", "seed": seed,
                "parameters": {"clips": clips, "frames": frames, "size_wh": list(size_wh), "fps": fps, "noise": noise,
                               "edge_sigma_px": EDGE_SIGMA, "shutter": shutter, "room_hole_px": ROOM_HOLE_PX,
                               "phases": {name: f for name, f in PHASES}},
                "sources": [str(f) for f in folders], "excluded": sorted(excluded), "clips": manifest_clips}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# -- command ----------------------------------------------------------------------------------------------
def _default_data() -> list[Path]:
    shared = Path(__file__).resolve().parents[3] / "shared"  # ../shared beside the checkout
    found = [shared / d for d in DEFAULT_DATA if (shared / d).is_dir()]
    if not found:
        raise BadInput("no --data given and ../shared's val folders are absent",
                       "give --data DIR (a val folder with images/ and masks/)")
    return found


def run(args) -> int:
    from vbg_app.config import parse_size

    folders = [Path(d) for d in args.data] or _default_data()
    size = parse_size(args.size)
    manifest = build(Path(args.out), folders, clips=args.clips, frames=args.frames, size_wh=size, fps=args.fps,
                     seed=args.seed, noise=args.noise, force=args.force, exclude=tuple(args.exclude),
                     shutter=args.shutter)
    for c in manifest["clips"]:
        print(f"{args.out}/{c['name']}: {c['n_frames']} frames ({c['n_fast']} fast), person {Path(c['person']).name}, "
              f"room {Path(c['room']).name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m vbg_app.tools.gt_video", (__doc__ or "").split("\n\n")[0], add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())

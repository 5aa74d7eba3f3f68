"""The README's commands work as written, so the README cannot drift from the app.

Every ``vbg ...`` line of the README's Usage block (and the quick start's run) is checked: its options parse
with vbg's own parser and every file it names in the repository exists. The lines that need no camera run as
written, with ``--frames`` added only to sources that never end; a camera becomes the demo source (this
machine has none) and the virtual camera a fake backend. Training (~80 min) is only parsed.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.util import read_frames
from vbg_app import cli

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
RELEASED = SHARED / "models" / "reference" / "pphumanseg_v1_lite_398x224.onnx"
CLIP_FRAMES = 12


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    usage = text.split("## Usage", 1)[1]
    block = re.search(r"```bash\n(.*?)```", usage, re.S).group(1)
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("vbg ")]
    quick = re.search(r"\.venv/bin/(vbg run [^\n`]*)", text.split("## Quick start", 1)[1])
    return commands + [quick.group(1).strip()]


COMMANDS = _readme_commands()


def test_the_readme_has_the_commands_this_test_expects():
    words = {c.split()[1] for c in COMMANDS}
    assert {"run", "devices", "gui", "eval", "bench", "export", "train"} <= words
    assert any("video:" in c and "file:" in c and "--frames" not in c for c in COMMANDS)


def _repo_paths(argv: list[str]) -> list[str]:
    """Arguments (or the part after ``image:``/``video:``) that name a file inside the repository."""
    found = []
    for arg in argv:
        value = arg.split(":", 1)[1] if re.match(r"^(image|video):", arg) else arg
        if value.startswith(("assets/", "models/", "vbg_app/", "docs/")) and not arg.startswith("--"):
            found.append(value)
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_and_names_existing_files(command):
    argv = command.split()[1:]
    for path in _repo_paths(argv):
        if argv[0] == "export" and path == argv[argv.index("--out") + 1]:
            continue
        if argv[0] == "train" and "--export" in argv and path == argv[argv.index("--export") + 1]:
            continue
        assert (REPO / path).exists(), f"README names {path}, which does not exist"
    cli.build_parser(argv[0]).parse_args(argv)  # SystemExit (exit 2) if an option is gone


def _clip(path: Path, n: int = CLIP_FRAMES) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    for i in range(n):
        frame = np.full((120, 160, 3), 90, np.uint8)
        cv2.circle(frame, (60 + 2 * i, 70), 30, (40, 60, 200), -1)
        vw.write(frame)
    vw.release()
    return path


def _data_folder(root: Path) -> Path:
    """A tiny images/ + masks/ folder like the val splits `vbg eval --data` reads."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        img = np.full((120, 90, 3), 120, np.uint8)
        mask = np.zeros((120, 90), np.uint8)
        cv2.ellipse(mask, (45, 80), (25, 45), 0, 0, 360, 255, -1)
        img[mask > 0] = (60, 80, 170)
        cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"{i:04d}.png"), mask)
    return root


@pytest.fixture
def readme_cwd(tmp_path, monkeypatch):
    """A working folder laid out like the repository for reading: assets/ linked, models/ copied (the
    README's export writes models/connectnet.onnx)."""
    (tmp_path / "assets").symlink_to(REPO / "assets", target_is_directory=True)
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


RUNNABLE = [c for c in COMMANDS if c.split()[1] != "train"]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUNNABLE)
def test_readme_command_runs(command, readme_cwd, fake_vcam, capsys):
    argv = command.split()[1:]
    endless = False
    for i, arg in enumerate(argv):
        if re.fullmatch(r"camera:\d+", arg):
            argv[i], endless = "demo", True  # no webcam on the test machine
        if arg == "demo":
            endless = True
    kind = argv[0]
    if kind == "run" and endless and "--frames" not in argv:
        argv += ["--frames", "3"]
    if any(a.startswith("video:") for a in argv):
        _clip(readme_cwd / next(a for a in argv if a.startswith("video:"))[6:])
    if kind == "eval":
        _data_folder(readme_cwd / argv[argv.index("--data") + 1])
        _clip(readme_cwd / argv[argv.index("--video") + 1])
    if kind == "bench":
        argv += ["--frames", "3", "--warmup", "1", "--paced-fps", "0", "--no-progress"]
    if kind == "export":
        if not RELEASED.is_file():
            pytest.skip("needs ../shared's released ConnectNet")
        shutil.copy(RELEASED, readme_cwd / argv[argv.index("--from-released") + 1])
    if kind == "gui":  # a real window in its own process, offscreen, on the demo, for a few frames
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(readme_cwd),
                   XDG_CONFIG_HOME=str(readme_cwd / "config"), XDG_DATA_HOME=str(readme_cwd / "data"))
        proc = subprocess.run([sys.executable, "-m", "vbg_app.cli", *argv, "--source", "demo",
                               "--quit-after-frames", "5"], env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        return
    assert cli.main(argv) == 0, capsys.readouterr().err
    sinks = [a[5:] for a in argv if a.startswith("file:")]
    if sinks:
        frames = read_frames(readme_cwd / sinks[0])
        expected = int(argv[argv.index("--frames") + 1]) if "--frames" in argv else CLIP_FRAMES
        assert len(frames) == expected  # a video into a file ends by itself with the clip's frame count

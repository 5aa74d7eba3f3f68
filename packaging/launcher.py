"""Entry script of the PyInstaller bundle: one script, two executables (``vbg`` and ``vbg-gui``).

The executable's own name picks the entry point, so both share one Analysis (one set of collected modules):

- ``vbg-gui`` (``vbg-gui.exe``, macOS app)  -> ``vbg_app.gui:main``  (the ``vbg-gui`` gui-script)
- anything else (``vbg``)                  -> ``vbg_app.cli:main``  (the ``vbg`` console script)

``vbg -m vbg_app.MODULE ARGS`` runs a vbg module the way ``python -m`` would: ``vbg bench`` starts its
isolated measurements as ``sys.executable -m vbg_app.tools.bench --worker ...``, and in a bundle
``sys.executable`` is this program. Only ``vbg_app`` modules are accepted.
"""
import os
import sys

# left out of the bundle on purpose (packaging/vbg.spec): the commands that need them say so in one line
PIP_ONLY = {"torch": "PyTorch (vbg train, vbg export)", "onnx": "onnx (vbg quantize)",
            "onnxslim": "onnxslim (vbg export)", "yaml": "PyYAML (vbg train)",
            "matplotlib": "matplotlib (vbg bench --plot)", "mediapipe": "MediaPipe (--engine mediapipe)"}


def _entry() -> int:
    argv = sys.argv
    if len(argv) >= 3 and argv[1] == "-m" and (argv[2] == "vbg_app" or argv[2].startswith("vbg_app.")):
        import runpy

        sys.argv = [argv[2]] + argv[3:]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        return 0
    name = os.path.basename(sys.executable).lower()
    if name.endswith(".exe"):
        name = name[:-4]
    if name.startswith("vbg-gui"):
        from vbg_app.gui import main
    else:
        from vbg_app.cli import main
    return main()


if __name__ == "__main__":
    # multiprocessing in a frozen program (training's loaders are not bundled, but keep spawn children sane)
    import multiprocessing

    multiprocessing.freeze_support()
    try:
        code = _entry()
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in PIP_ONLY:
            raise
        print(f"error: this command needs {PIP_ONLY[root]}, which the vbg app bundle does not include. "
              "Install vbg with pip for it (see README.md: pip install -e \".[cpu,gui,train]\").", file=sys.stderr)
        code = 2
    sys.exit(code)

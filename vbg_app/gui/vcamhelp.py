"""What the window says about the virtual camera, in the GUI's words.

The sink's errors are written for ``vbg run`` (they end in CLI advice such as ``--sink file:out.mp4``); the
window shows a short sentence instead (:func:`vcam_label`), keeps the sink's text as the detail (tooltip, the
dialog's "Show Details...") and offers "How to set it up", which shows :func:`setup_steps` for this system.
"""
from __future__ import annotations

import html
import platform

HELP_TITLE = "Set up a virtual camera"
HELP_INTRO = ("vbg sends its picture to a virtual camera, which Zoom, Meet or Teams then offer like a webcam. "
              "Set one up once:")
# states after which the window offers the set-up steps
HELP_STATES = ("missing", "unavailable", "lost")

_STEPS = {
    "Linux": (
        "1. Install the loopback driver:\n"
        "    sudo apt install v4l2loopback-dkms\n"
        "2. Load it:\n"
        '    sudo modprobe v4l2loopback exclusive_caps=1 card_label="vbg"\n'
        "3. Turn the virtual camera on in vbg, then choose “vbg” as the camera in your meeting app.\n\n"
        "Step 2 lasts until the next restart. To load it at every start:\n"
        "    echo v4l2loopback | sudo tee /etc/modules-load.d/vbg.conf\n"
        "    echo 'options v4l2loopback exclusive_caps=1 card_label=\"vbg\"' | sudo tee /etc/modprobe.d/vbg.conf\n"
        "Not Debian or Ubuntu: install v4l2loopback with your distribution's package manager."),
    "Windows": (
        "1. Install OBS Studio (obsproject.com).\n"
        "2. Open OBS, click “Start Virtual Camera” once, then “Stop Virtual Camera”, and close OBS.\n"
        "3. Turn the virtual camera on in vbg, then choose “OBS Virtual Camera” in your meeting app."),
    "Darwin": (
        "1. Install OBS Studio 30 or newer (obsproject.com).\n"
        "2. Open OBS, click “Start Virtual Camera” once and approve the system extension (System Settings → "
        "Privacy & Security), then click “Stop Virtual Camera” and close OBS.\n"
        "3. Turn the virtual camera on in vbg, then choose “OBS Virtual Camera” in your meeting app."),
}


def setup_steps(system: str | None = None) -> str:
    """The steps that give ``system`` (default: this one; ``platform.system()`` names) a virtual camera."""
    system = system or platform.system()
    return _STEPS.get(system, f"vbg has no virtual camera for {system or 'this system'} yet: pyvirtualcam "
                              "supports Linux (v4l2loopback), Windows and macOS (OBS Studio).")


def steps_html(steps: str) -> str:
    """:func:`setup_steps`'s text as rich text: indented lines (commands) in a fixed-width font, wrapped only
    where the dialog is too narrow for them."""
    parts = []
    for line in steps.splitlines():
        if line.startswith("    "):
            parts.append("<p style='margin: 2px 0 6px 16px; font-family: monospace; white-space: pre-wrap'>"
                         f"{html.escape(line.strip(), quote=False)}</p>")
        else:
            parts.append(f"<p style='margin: 2px 0'>{html.escape(line, quote=False) or '&nbsp;'}</p>")
    return "".join(parts)


def vcam_label(state: str, detail: str) -> str:
    """The sentence beside the switch for the worker's ``state`` and text ``detail`` (shown as it is for "on",
    "starting" and other errors; replaced by a short sentence where the detail is the sink's own advice)."""
    if state == "off":
        return "Off. Turn it on, then choose the virtual camera in your meeting app."
    if state == "missing":
        return "No virtual camera found. Set one up, then turn it on again; the preview goes on meanwhile."
    if state == "unavailable":
        return "Off. No virtual camera found yet: set one up before your meeting."
    if state == "lost":
        return "The virtual camera stopped. The preview goes on; turn it on again to retry."
    if state == "error":
        return f"Could not start: {detail}"
    return detail

"""settings.json: what a newer vbg or a dotfiles manager put there survives a save."""
from __future__ import annotations

import json
import os

import pytest

from vbg_app.gui.settings import SETTINGS_FILE, Settings, SettingsStore


def test_unknown_keys_are_written_back(tmp_path):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"mirror": True, "future_feature": {"a": [1, 2]},
                                                      "zoom": 1.5}))
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    assert notice == "" and s.mirror is True
    s.mirror = False
    assert store.save(s) == ""
    data = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert data["future_feature"] == {"a": [1, 2]} and data["zoom"] == 1.5
    assert data["mirror"] is False
    again, _ = SettingsStore(tmp_path).load()
    assert again.mirror is False


def test_a_fresh_store_writes_only_known_keys(tmp_path):
    store = SettingsStore(tmp_path)
    assert store.save(Settings()) == ""
    assert set(json.loads((tmp_path / SETTINGS_FILE).read_text())) == set(Settings().as_dict())


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_symlinked_settings_file_stays_a_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "vbg.json"
    real.write_text(json.dumps({"mirror": True}))
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / SETTINGS_FILE).symlink_to(real)
    store = SettingsStore(conf)
    s, _ = store.load()
    assert s.mirror is True
    s.blur_strength = 42
    assert store.save(s) == ""
    assert (conf / SETTINGS_FILE).is_symlink()
    assert json.loads(real.read_text())["blur_strength"] == 42
    assert not list(conf.glob(".settings-*")) and not list(dotfiles.glob(".settings-*"))


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_looping_link_is_not_written_over(tmp_path):
    a = tmp_path / SETTINGS_FILE
    b = tmp_path / "other.json"
    a.symlink_to(b)
    b.symlink_to(a)
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    assert s == Settings()
    assert notice  # the user is told (the loop was moved aside or left alone)
    why = store.save(s)
    if os.path.islink(a):  # still the loop: save refused and said why
        assert why
    else:  # moved aside by load(): a plain new file
        assert why == "" and json.loads(a.read_text())["version"] == Settings().version

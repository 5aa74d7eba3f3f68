#!/bin/sh
# vbg: install this bundle for the current user (no root needed).
#
#   ./install.sh            copies this folder to ~/.local/lib/vbg, links ~/.local/bin/vbg and vbg-gui,
#                           adds a desktop entry (vbg.desktop) and its icon
#   ~/.local/lib/vbg/uninstall.sh      removes all of it again
#
# Honours XDG_DATA_HOME (menu entry and icon, default ~/.local/share), VBG_INSTALL_DIR (default
# ~/.local/lib/vbg) and VBG_BIN_DIR (the links, default ~/.local/bin).
set -eu

SRC=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
# not $DATA/vbg: that is vbg's own data folder (your added backgrounds, logs; platformdirs user_data_dir)
DEST=${VBG_INSTALL_DIR:-$HOME/.local/lib/vbg}
BIN=${VBG_BIN_DIR:-$HOME/.local/bin}
APPS=$DATA/applications
ICONS=$DATA/icons/hicolor/256x256/apps

for f in vbg vbg-gui _internal .vbg-bundle; do
  if [ ! -e "$SRC/$f" ]; then
    echo "install.sh: $SRC/$f is missing; run install.sh from the unpacked vbg folder" >&2
    exit 2
  fi
done

if [ "$SRC" != "$DEST" ]; then
  if [ -e "$DEST" ]; then
    if [ ! -e "$DEST/.vbg-bundle" ]; then
      echo "install.sh: $DEST exists and is not a vbg install; move it away first" >&2
      exit 2
    fi
    rm -rf "$DEST"  # an older vbg: replace it whole
  fi
  mkdir -p "$(dirname "$DEST")"
  cp -a "$SRC" "$DEST.tmp.$$"
  mv "$DEST.tmp.$$" "$DEST"
fi

mkdir -p "$BIN" "$APPS" "$ICONS"
ln -sfn "$DEST/vbg" "$BIN/vbg"
ln -sfn "$DEST/vbg-gui" "$BIN/vbg-gui"
cp "$DEST/vbg.png" "$ICONS/vbg.png"
sed "s|@DIR@|$DEST|g" "$DEST/vbg.desktop.in" > "$APPS/vbg.desktop.tmp.$$"
chmod 644 "$APPS/vbg.desktop.tmp.$$"
mv "$APPS/vbg.desktop.tmp.$$" "$APPS/vbg.desktop"

# refresh the menus' caches where the tools exist (silently: a missing cache is not an error)
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true

echo "vbg installed in $DEST"
echo "  commands: $BIN/vbg, $BIN/vbg-gui"
echo "  menu:     $APPS/vbg.desktop (\"vbg\" in your applications)"
case ":${PATH:-}:" in
  *":$BIN:"*) ;;
  *) echo "  note: $BIN is not on your PATH; add it, or start vbg as $BIN/vbg" ;;
esac
echo "  remove with: $DEST/uninstall.sh"
echo "The virtual camera needs v4l2loopback: sudo apt install v4l2loopback-dkms &&"
echo "  sudo modprobe v4l2loopback exclusive_caps=1 card_label=vbg   (then pick \"vbg\" in the meeting app)"

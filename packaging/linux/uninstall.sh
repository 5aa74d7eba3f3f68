#!/bin/sh
# vbg: remove what install.sh added (the install folder, the two links, the desktop entry and the icon).
# Your settings (~/.config/vbg) and your added backgrounds and logs (~/.local/share/vbg) are kept; delete them
# by hand if you want them gone. Honours the same XDG_DATA_HOME, VBG_INSTALL_DIR and VBG_BIN_DIR as install.sh.
set -eu

DATA=${XDG_DATA_HOME:-$HOME/.local/share}
# not $DATA/vbg: that is vbg's own data folder (your added backgrounds, logs; platformdirs user_data_dir)
DEST=${VBG_INSTALL_DIR:-$HOME/.local/lib/vbg}
BIN=${VBG_BIN_DIR:-$HOME/.local/bin}

for name in vbg vbg-gui; do
  link=$BIN/$name
  if [ -L "$link" ]; then
    case "$(readlink "$link")" in
      "$DEST"/*) rm -f "$link" ;;
      *) echo "uninstall.sh: kept $link (it points elsewhere)" ;;
    esac
  fi
done
rm -f "$DATA/applications/vbg.desktop" "$DATA/icons/hicolor/256x256/apps/vbg.png"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true

if [ -e "$DEST/.vbg-bundle" ]; then
  rm -rf "$DEST"
  echo "vbg removed from $DEST"
elif [ -e "$DEST" ]; then
  echo "uninstall.sh: $DEST is not a vbg install; left it alone" >&2
  exit 2
else
  echo "vbg was not installed in $DEST; removed the menu entry and links if there were any"
fi

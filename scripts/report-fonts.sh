#!/usr/bin/env bash
# Makes the Chinese chart font of the daily report again:
#   crates/report/assets/NotoSansCJKsc-report.otf
# a subset of Noto Sans CJK SC Regular that holds printable ASCII, a few punctuation marks and
# every character of the Chinese strings table (crates/report/src/lang/zh_cn.rs). Run it after
# an edit of that table; `cargo test -p rtcroom-report` says which characters the font lacks.
#
# Needs fontTools' pyftsubset and the Debian package fonts-noto-cjk (or NOTO_CJK_TTC set to
# NotoSansCJK-Regular.ttc); both only here, never at run time: the subset is embedded in the
# binary. Example on Debian:
#   apt-get install fonts-noto-cjk python3-fonttools && scripts/report-fonts.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ttc=${NOTO_CJK_TTC:-/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc}
pyftsubset=${PYFTSUBSET:-pyftsubset}
if [[ ! -f $ttc ]]; then
  echo "no $ttc: install the Debian package fonts-noto-cjk or set NOTO_CJK_TTC" >&2
  exit 1
fi
if ! command -v "$pyftsubset" >/dev/null; then
  echo "no pyftsubset: install python3-fonttools (or pip install fonttools) or set PYFTSUBSET" >&2
  exit 1
fi
table=$root/crates/report/src/lang/zh_cn.rs
out=$root/crates/report/assets/NotoSansCJKsc-report.otf
# Every non-ASCII character of the table, sorted, plus the signs the charts draw themselves.
text=$(LC_ALL=C.UTF-8 grep -o '[^ -~]' "$table" | LC_ALL=C.UTF-8 sort -u | tr -d '\n')
text+=$'\u2013\u2014\u2026\u2192\u2264\u2265\u00b0\u00b7'
# Font number 2 of the collection is Noto Sans CJK SC (0 JP, 1 KR, 3 TC, 4 HK).
"$pyftsubset" "$ttc" --font-number=2 \
  --unicodes="U+0020-007E" --text="$text" \
  --no-hinting --desubroutinize --layout-features='' \
  --output-file="$out"
echo "$out: $(wc -c <"$out") bytes, $(printf '%s' "$text" | wc -m) characters beyond ASCII"

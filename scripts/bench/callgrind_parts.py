#!/usr/bin/env python3
"""Instructions per relayed offer by part, from a callgrind profile of the bench's window.

    scripts/bench/callgrind_parts.py OUT/callgrind.out.window OFFERS [--top N]

Each function's own (exclusive) instructions go to the first part whose pattern matches
its name (or, failing that, its file). The parts follow a relayed offer: framing (the
WebSocket reader and writer, unmasking), UTF-8 check, decode (scan, identifiers), engine,
encode, hub and queues (channels, wakers), tokio (scheduler, IO driver, timers), allocator,
copies (libc's memcpy/memset: callgrind counts every byte step of `rep movsb`/`rep stosb`
as an instruction, so these rows overstate their time), the rest. Kernel time is not
counted by callgrind (see `profile.sh perf`).
"""
import re
import subprocess
import sys
from collections import defaultdict

PARTS = [
    ("copies (libc memcpy/memset)", r"__mem(cpy|move|set)|memcpy|memmove|memset"),
    ("UTF-8 check", r"str::converts::from_utf8|str/validations\.rs|simdutf8|from_utf8"),
    ("decode: scan", r"rtcroom_protocol::scan|protocol/src/scan\.rs|memchr"),
    ("decode: identifiers", r"rtcroom_protocol::ident|protocol/src/ident\.rs"),
    ("decode: the rest", r"rtcroom_protocol::decode|protocol/src/decode\.rs|serde_json"),
    ("encode", r"rtcroom_protocol::encode|protocol/src/encode\.rs|write_json|splice"),
    ("engine", r"rtcroom_core|crates/core/"),
    ("WebSocket framing, unmasking", r"signaling::frame|signaling/frame\.rs|signaling::ws|signaling/ws\.rs|tungstenite|mask"),
    ("hub and queues (channels, wakers)", r"signaling::hub|signaling/hub\.rs|signaling::queue|signaling/queue\.rs|sync::mpsc|tokio/src/sync|semaphore|AtomicWaker|futures_channel|futex|pthread_mutex|lock"),
    ("connection task", r"signaling::connection|signaling/connection\.rs|raw\.rs|raw::connection|ops::metrics|prometheus"),
    ("allocator", r"mi_|mimalloc|malloc|_int_free|cfree|__libc_|alloc::alloc|realloc|raw_vec"),
    ("tokio (scheduler, IO driver, timers)", r"tokio|mio::|epoll|hyper"),
]

def main():
    path, offers = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--top" else 0
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", "--inclusive=no", path],
        capture_output=True, text=True, check=True).stdout
    total = None
    parts = defaultdict(int)
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        what = m.group(3)
        if "PROGRAM TOTALS" in what:
            total = n
            continue
        # The frames on each thread's stack when the counts were zeroed come out with their
        # callees' cost (98-100%); no function's own cost comes near that.
        if float(m.group(2)) >= 60:
            continue
        file, _, func = what.partition(":") if not what.startswith("./") else what.partition(":")
        name = func or what
        part = "other"
        for label, pat in PARTS:
            if re.search(pat, name):
                part = label
                break
        else:
            for label, pat in PARTS:
                if re.search(pat, file):
                    part = label
                    break
        parts[part] += n
        rows.append((n, part, what))
    print(f"total {total:,} instructions, {offers} offers: {total / offers:,.0f} per offer")
    for label, _ in PARTS + [("other", "")]:
        n = parts.get(label, 0)
        print(f"  {label:40s} {n / offers:>9,.0f}  ({100 * n / total:4.1f}%)")
    if top:
        for n, part, what in sorted(rows, reverse=True)[:top]:
            print(f"{n / offers:>9,.0f}  {part[:20]:20s} {what[:150]}")

main()

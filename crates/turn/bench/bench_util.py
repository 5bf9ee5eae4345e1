"""Helpers of turn_vs_coturn.sh: free ports, kernel drop counters, figures and the summary."""

import re
import socket
import statistics
import sys

COLUMNS = ["server", "lost", "lost%", "cpu_us/dgram", "rss_kb/alloc", "allocs", "datagrams",
           "cpu_s", "server_drops", "peer_drops"]


def free_port():
    """A free UDP port outside both servers' relay ranges (44000-47999), so that the drop
    counts of a server's relay range never include the peer's socket."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not 44000 <= port <= 47999:
            print(port)
            return


def drops(listen, lo, hi):
    """Receive-buffer drops summed over UDP sockets on port LISTEN or within LO..HI."""
    listen, lo, hi = int(listen), int(lo), int(hi)
    total = 0
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if port == listen or lo <= port <= hi:
                total += int(fields[-1])
    print(total)


def wait_listening(port, seconds="15"):
    """Wait until a UDP socket is bound to PORT (a server under load may take seconds to start)."""
    import time
    deadline = time.monotonic() + float(seconds)
    hexport = f"{int(port):04X}"
    while time.monotonic() < deadline:
        with open("/proc/net/udp") as f:
            if any(line.split()[1].endswith(":" + hexport) for line in f.readlines()[1:]):
                return
        time.sleep(0.1)
    sys.exit(f"nothing listens on UDP port {port} after {seconds} s")


def figures(name, uclient_log, cpu0, cpu1, tck, rss0, peak, allocs, server_drops, peer_drops):
    text = open(uclient_log).read()
    lost = re.findall(r"Total lost packets (\d+) \(([\d.]+)%\)", text)[-1]
    sent = int(re.findall(r"tot_send_msgs=(\d+)", text)[-1])
    recv = int(re.findall(r"tot_recv_msgs=(\d+)", text)[-1])
    datagrams = sent + recv
    cpu = (int(cpu1) - int(cpu0)) / int(tck)
    row = [name, lost[0], f"{float(lost[1]):.2f}", f"{cpu / max(datagrams, 1) * 1e6:.2f}",
           f"{(int(peak) - int(rss0)) / int(allocs):.1f}", allocs, str(datagrams),
           f"{cpu:.2f}", server_drops, peer_drops]
    print(" ".join(f"{c:<13}" for c in row))


def header():
    print(" ".join(f"{c:<13}" for c in COLUMNS))


def summary(results):
    rows = {}
    for line in open(results):
        f = line.split()
        rows.setdefault(f[0], []).append(f)
    med = {}
    print("\nsummary: median [min-max]")
    for name, rs in rows.items():
        col = lambda i: [float(r[i]) for r in rs]
        med[name] = {i: statistics.median(col(i)) for i in (2, 3, 4)}
        print(f"{name:9} lost% {med[name][2]:.2f} [{min(col(2)):.2f}-{max(col(2)):.2f}]  "
              f"cpu_us/datagram {med[name][3]:.2f} [{min(col(3)):.2f}-{max(col(3)):.2f}]  "
              f"rss_kb/alloc {med[name][4]:.1f} [{min(col(4)):.1f}-{max(col(4)):.1f}]  "
              f"server_drops {sum(int(r[8]) for r in rs)}  peer_drops {sum(int(r[9]) for r in rs)}")
    if "coturn" in med and "embedded" in med:
        c, e = med["coturn"], med["embedded"]
        ratio = lambda a, b: a / b if b else float("inf")
        print(f"embedded/coturn: cpu {ratio(e[3], c[3]):.2f}x (goal <= 1x), "
              f"rss {ratio(e[4], c[4]):.2f}x (goal <= 0.5x; first run only: later runs "
              f"measure growth)")
        for i in range(min(len(rows["coturn"]), len(rows["embedded"]))):
            c_cpu, e_cpu = float(rows["coturn"][i][3]), float(rows["embedded"][i][3])
            print(f"run {i + 1}: cpu {ratio(e_cpu, c_cpu):.2f}x")


if __name__ == "__main__":
    {"free-port": free_port, "drops": drops, "figures": figures, "header": header,
     "summary": summary, "wait-listening": wait_listening}[sys.argv[1]](*sys.argv[2:])

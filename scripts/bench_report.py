#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench_report.py - the report half of scripts/bench.sh.

Reads what bench.sh measured in OUT/raw/ and writes OUT/results.json, OUT/results.txt
(also printed) and OUT/chart.png (through gnuplot, when it is there):
  raw/FIG.SERVER.REP.json   one tlsbench --json run (FIG_TO_KEYS says what each gives)
  raw/floor.REP.json        one tlsbench-floor --json run
  raw/figures.tsv           FIGURE<TAB>SERVER<TAB>VALUE lines that bench.sh measured
                            without tlsbench (client CPU, callgrind instructions)

Usage: bench_report.py --out DIR --repeat N --workers N --cpus N --load L
                       --nginx-version V --check-conns N --rr-many N
                       [--quick] [--hs-only] [--gnuplot] [--scaling | --terminators]
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

PROG = "bench.sh"

class ABS(float):
    """A goal on tlskit's own value rather than on its ratio to nginx."""


# Figures in report order: key, label, unit, better, goal ratio (tlskit/nginx; None: no
# goal), goal text. "{rr}" is the connection count of the many-connection figures.
FIGURES = [
    ("full_hs", "full handshakes per server CPU-s", "handshakes/CPU-s", "higher", 1.25, ">= 1.25x nginx"),
    ("resumed_hs", "resumed handshakes per server CPU-s", "handshakes/CPU-s", "higher", 1.25, ">= 1.25x nginx"),
    ("bulk_bytes_per_cpu", "bulk download bytes per server CPU-s", "bytes/CPU-s", "higher", 1.5, ">= 1.5x nginx"),
    ("idle_rss_bytes", "server RSS per idle TLS connection (gradual)", "bytes", "lower", 0.5, "<= 0.5x nginx"),
    ("burst_rss_bytes", "server RSS per idle TLS connection after a burst", "bytes", "lower", 0.5, "<= 0.5x nginx"),
    ("after_burst_ratio", "server RSS 10 s after the burst closed / before it", "x", "lower", ABS(1.25), "tlskit <= 1.25"),
    ("rr1_p99_ms", "p99 latency, 1 connection", "ms", "lower", 1, "<= nginx"),
    ("rrN_p99_ms", "p99 latency, {rr} connections", "ms", "lower", 1, "<= nginx"),
    ("full_hs_wall", "full handshakes per second (wall)", "handshakes/s", "higher", None, ""),
    ("resumed_hs_wall", "resumed handshakes per second (wall)", "handshakes/s", "higher", None, ""),
    ("bulk_mb_s", "bulk download MB/s (wall)", "MB/s", "higher", None, ""),
    ("rr1_rate", "requests per second, 1 connection", "requests/s", "higher", None, ""),
    ("rrN_rate", "requests per second, {rr} connections", "requests/s", "higher", None, ""),
    ("rr1_per_cpu", "requests per server CPU-s, 1 connection", "requests/CPU-s", "higher", None, ""),
    ("rrN_per_cpu", "requests per server CPU-s, {rr} connections", "requests/CPU-s", "higher", None, ""),
    ("full_hs_w1", "full handshakes per server CPU-s, 1 worker", "handshakes/CPU-s", "higher", None, ""),
    ("full_hs_w1_wall", "full handshakes per second, 1 worker (wall)", "handshakes/s", "higher", None, ""),
    ("full_hs_instr", "user-space instructions per full handshake", "instructions", "lower", None, ""),
    ("resumed_hs_instr", "user-space instructions per resumed handshake", "instructions", "lower", None, ""),
]
SERVERS = ["tlskit", "nginx", "s_server", "floor"]
JSON_NAME = {"tlskit": "tlskit", "nginx": "nginx", "s_server": "openssl_s_server",
             "floor": "raw_openssl_floor"}

# raw/FIG.SERVER.REP.json (tlsbench) -> the figures it gives: (figure, tlsbench key).
# "rrN" stands for rr{rr}, the file name bench.sh gives the many-connection runs.
FIG_TO_KEYS = {
    "full_hs": [("full_hs", "per_server_cpu_s"), ("full_hs_wall", "rate")],
    "resumed_hs": [("resumed_hs", "per_server_cpu_s"), ("resumed_hs_wall", "rate")],
    "rr1": [("rr1_p99_ms", "p99"), ("rr1_rate", "rate"), ("rr1_per_cpu", "per_server_cpu_s")],
    "rrN": [("rrN_p99_ms", "p99"), ("rrN_rate", "rate"), ("rrN_per_cpu", "per_server_cpu_s")],
    "bulk": [("bulk_bytes_per_cpu", "per_server_cpu_s"), ("bulk_mb_s", "mb_per_s")],
    "idle": [("idle_rss_bytes", "server_rss_per_conn_bytes")],
    "burst": [("burst_rss_bytes", "server_rss_per_conn_bytes"),
              ("after_burst_ratio", "server_rss_after_close_ratio")],
}
# The one-worker twins measured beside the full handshakes: SERVER_w1 counts for SERVER.
W1_RENAME = {"full_hs": "full_hs_w1", "full_hs_wall": "full_hs_w1_wall"}
FLOOR_KEYS = [("full_hs", "full_handshakes_per_cpu_s"),
              ("resumed_hs", "resumed_handshakes_per_cpu_s"),
              ("bulk_bytes_per_cpu", "encrypt_bytes_per_cpu_s")]


def note(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr)


def first(obj, key, kind):
    """The first value named KEY of type KIND, depth first in document order (the keys
    tlsbench prints are unique, but some sit inside objects: latency_ms.p99, idle.open)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                return v if isinstance(v, kind) and not isinstance(v, bool) else None
            found = first(v, key, kind)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = first(v, key, kind)
            if found is not None:
                return found
    return None


def load(path):
    """A tlsbench JSON file, or None when the run failed and left no (whole) object."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def g6(x):
    """What the report shows of a statistic: six significant digits (ratios are taken
    from these, so the table and results.json agree)."""
    return float("%.6g" % x)


class Values:
    """figure -> server -> [values], in the order of the repetitions."""

    def __init__(self):
        self.v = {}

    def add(self, fig, srv, value):
        if value is not None:
            self.v.setdefault(fig, {}).setdefault(srv, []).append(value)

    def get(self, fig, srv):
        return self.v.get(fig, {}).get(srv, [])

    def stats(self, fig, srv):
        """(median, min, max), or None when there is no value."""
        vals = sorted(self.get(fig, srv))
        if not vals:
            return None
        n = len(vals)
        med = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
        return g6(med), g6(vals[0]), g6(vals[-1])

    def median(self, fig, srv):
        st = self.stats(fig, srv)
        return st[0] if st else None

    def has_data(self, fig):
        return any(self.get(fig, s) for s in SERVERS)


def collect(raw, rr_many):
    """Every figure from raw/ (bench.sh empties it before a run)."""
    vals = Values()
    runs = []
    for path in glob.glob(os.path.join(raw, "*.json")):
        m = re.fullmatch(r"(\w+)\.(\w+)\.(\d+)\.json", os.path.basename(path))
        if m:
            runs.append((int(m.group(3)), m.group(1), m.group(2), path))
        m = re.fullmatch(r"floor\.(\d+)\.json", os.path.basename(path))
        if m:
            runs.append((int(m.group(1)), "floor", "floor", path))
    for rep, fig, srv, path in sorted(runs):
        if fig == "floor":
            data = load(path)
            for figure, key in FLOOR_KEYS:
                vals.add(figure, "floor", first(data, key, (int, float)))
            continue
        keys = FIG_TO_KEYS.get("rrN" if fig == "rr%d" % rr_many else fig)
        if not keys:
            continue  # conns10k: the connections check, not a figure
        data = load(path)
        for figure, key in keys:
            if srv.endswith("_w1"):
                figure, srv_as = W1_RENAME.get(figure), srv[:-3]
                if figure is None:
                    continue
            else:
                srv_as = srv
            vals.add(figure, srv_as, first(data, key, (int, float)))
    try:
        with open(os.path.join(raw, "figures.tsv")) as f:
            for line in f:
                fig, srv, value = line.rstrip("\n").split("\t")
                vals.add(fig, srv, json.loads(value))  # an int stays an int
    except FileNotFoundError:
        pass
    return vals


def ratio(a, b):
    """a / b as shown (three decimals), or None."""
    if a is None or b is None or b == 0:
        return None
    return float("%.3f" % (a / b))


def goal_verdict(vals, k, r, goal, better):
    """The verdict on a figure: its ratio to nginx, or tlskit's own value for an ABS goal."""
    if isinstance(goal, ABS):
        return verdict(vals.median(k, "tlskit"), float(goal), better)
    return verdict(r, goal, better)


def verdict(r, goal, better):
    if r is None or goal is None:
        return ""
    return "met" if (r >= goal if better == "higher" else r <= goal) else "missed"


def fmt(v):
    """A short human number."""
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e9:
        return "%.2fG" % (v / 1e9)
    if a >= 1e6:
        return "%.2fM" % (v / 1e6)
    if a >= 1e4:
        return "%.1fk" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    return "%.3g" % v


def pad(s, width, left=False):
    """printf-style padding counted in bytes, as the table has always been laid out."""
    fill = " " * max(0, width - len(s.encode()))
    return s + fill if left else fill + s


def figures(args):
    return [(k, label.format(rr=args.rr_many), unit, better, goal, text)
            for k, label, unit, better, goal, text in FIGURES]


def results_json(args, vals, check):
    figs = []
    for k, label, unit, better, goal, goaltext in figures(args):
        if not vals.has_data(k):
            continue
        fig = {"name": k, "label": label, "unit": unit, "better": better}
        for s in SERVERS:
            st = vals.stats(k, s)
            if st:
                fig[JSON_NAME[s]] = {"median": st[0], "min": st[1], "max": st[2],
                                     "values": vals.get(k, s)}
        r = ratio(vals.median(k, "tlskit"), vals.median(k, "nginx"))
        fig["ratio_vs_nginx"] = r
        rf = ratio(vals.median(k, "tlskit"), vals.median(k, "floor"))
        if rf is not None:
            fig["ratio_vs_floor"] = rf
        if goal is not None:
            fig["goal"] = goaltext
            fig["met"] = goal_verdict(vals, k, r, goal, better) == "met"
        figs.append(fig)
    # Scaling: wall-clock and per-CPU, N workers over 1 worker.
    scaling = {}
    for s in ("tlskit", "nginx"):
        w = ratio(vals.median("full_hs_wall", s), vals.median("full_hs_w1_wall", s))
        c = ratio(vals.median("full_hs", s), vals.median("full_hs_w1", s))
        if w is not None:
            scaling[s] = {"workers": args.workers, "wall_rate_ratio": w, "per_cpu_ratio": c}
    client = {kind: {c: vals.median("client_%s_us" % kind, c) for c in ("tlsbench", "h2load")}
              for kind in ("full", "resumed")}
    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    return {
        "tool": "scripts/bench.sh",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick, "repeat": args.repeat, "workers": args.workers,
        "machine": {"cpus": args.cpus, "kernel": platform.release(),
                    "load_at_start": float(args.load), "openssl": openssl.strip().replace('"', ""),
                    "nginx": args.nginx_version},
        "method": "loopback, ECDSA P-256, TLS 1.3 (X25519, AES-256-GCM); server CPU from the "
                  "servers' process CPU clocks over each measured window; median of %d" % args.repeat,
        "figures": figs,
        "scaling": scaling,
        "client_cpu_us_per_handshake": client,
        "connections_check": check,
    }


def results_txt(args, vals, check):
    lines = []
    row = lambda cells: "%s %s %s %s %s %s  %s" % (
        pad(cells[0], 52, left=True), *(pad(c, 14) for c in cells[1:5]), pad(cells[5], 8), cells[6])
    lines.append("tlskit vs nginx %s and openssl s_server, loopback, %d CPUs, %d workers, median of %d%s"
                 % (args.nginx_version or "-", args.cpus, args.workers, args.repeat,
                    " (--quick: a smoke test, not a verdict)" if args.quick else ""))
    lines.append(row(["figure", "tlskit", "nginx", "s_server", "raw-floor", "tk/nginx", "goal"]))
    for k, label, unit, better, goal, goaltext in figures(args):
        if not vals.has_data(k):
            continue
        r = ratio(vals.median(k, "tlskit"), vals.median(k, "nginx"))
        cells = [label]
        for s in SERVERS:
            st = vals.stats(k, s)
            cell = fmt(st[0] if st else None)
            if st and args.repeat > 1:
                # spread: (max - min) / 2 over the median
                cell += " " + ("±%.0f%%" % (50 * (st[2] - st[1]) / st[0]) if st[0] != 0 else "")
            cells.append(cell)
        cells.append("%.2fx" % r if r is not None else "-")
        cells.append("%s: %s" % (goaltext, goal_verdict(vals, k, r, goal, better)) if goaltext else "")
        lines.append(row(cells))
    for s in ("tlskit", "nginx"):
        w = ratio(vals.median("full_hs_wall", s), vals.median("full_hs_w1_wall", s))
        c = ratio(vals.median("full_hs", s), vals.median("full_hs_w1", s))
        if w is not None:
            lines.append("scaling 1 -> %d workers, %-7s full handshakes/s x%s (per server CPU-s x%s)"
                         % (args.workers, s + ":", "%.3f" % w, "%.3f" % c if c is not None else "-"))
    if not args.hs_only:
        rf = ratio(vals.median("full_hs", "tlskit"), vals.median("full_hs", "floor"))
        lines.append("full handshakes per server CPU-s, tlskit / raw floor: %s (goal >= 0.90: %s)"
                     % ("%.3f" % rf if rf is not None else "-", verdict(rf, 0.9, "higher")))
        m = lambda fig, c: fmt(vals.median(fig, c))
        lines.append("client CPU per handshake + GET against nginx: full: tlsbench %s us, h2load %s us; "
                     "resumed: tlsbench %s us, h2load %s us"
                     % (m("client_full_us", "tlsbench"), m("client_full_us", "h2load"),
                        m("client_resumed_us", "tlsbench"), m("client_resumed_us", "h2load")))
        suites = []
        for s in ("tlskit", "nginx", "s_server"):
            c = first(load(os.path.join(args.out, "raw", "bulk.%s.1.json" % s)), "cipher", str)
            suites.append("%s %s" % (s, c or "?"))
        lines.append("suite each server chose (bulk; each its default): %s; the floor: OpenSSL default"
                     % ", ".join(suites))
        show = lambda v: "-" if v is None else str(v)
        if check["wanted"] > 0:
            lines.append("%d connections held and all answering (tlsserver echo): %s (open %s, verified %s)"
                         % (check["wanted"], "yes" if check["ok"] else "NO", show(check["open"]),
                            show(check["verified"])))
    return "".join(line + "\n" for line in lines)


def chart(args, vals):
    """Every figure with a reference, relative to nginx (1.0), oriented so that above 1
    means better than nginx: gnuplot's data, then the plot."""
    dat = os.path.join(args.out, "chart.dat")
    with open(dat, "w") as f:
        for k, label, unit, better, goal, goaltext in figures(args):
            n = vals.median(k, "nginx")
            if n is None:
                continue
            cols = []
            for s in ("tlskit", "s_server", "floor"):
                m = vals.median(k, s)
                r = None if m is None else ratio(m, n) if better == "higher" else ratio(n, m)
                cols.append("-" if r is None else "%.3f" % r)
            f.write('"%s" %s\n' % (label, " ".join(cols)))
    script = """\
set terminal pngcairo size 1400,800 noenhanced font ",10"
set output "{out}/chart.png"
set title "tlskit and references relative to nginx (1.0 = nginx; above 1 = better than nginx; latency and memory inverted)"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top right
set xtics rotate by 30 right scale 0
set ylabel "relative to nginx (log scale)"
set logscale y 2
set yrange [0.125:8]
set grid ytics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "black"
set bmargin 14
set lmargin 22
plot "{dat}" using 2:xtic(1) title "tlskit" lc rgb "#1f77b4", \\
     "" using 3 title "openssl s_server" lc rgb "#aaaaaa", \\
     "" using 4 title "raw OpenSSL floor (in memory)" lc rgb "#2ca02c"
""".format(out=args.out, dat=dat)
    log = os.path.join(args.out, "raw", "gnuplot.log")
    with open(log, "w") as f:
        rc = subprocess.run(["gnuplot"], input=script, text=True, stdout=f, stderr=f).returncode
    if rc != 0:
        note("gnuplot failed: see %s" % log)


def runs_of(raw, prefix):
    """raw/PREFIX.SERVER.REP.json -> {server: [data, ...]} in the order of the rounds."""
    found = []
    for path in glob.glob(os.path.join(raw, prefix + ".*.json")):
        m = re.fullmatch(re.escape(prefix) + r"\.(\w+)\.(\d+)\.json", os.path.basename(path))
        if m:
            found.append((int(m.group(2)), m.group(1), path))
    out = {}
    for _, srv, path in sorted(found):
        out.setdefault(srv, []).append(load(path))
    return out


def median_of(values):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    n = len(vals)
    return g6(vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2)


def report_scaling(args):
    """--scaling: full handshakes/s and per server CPU-s at 1, 2, 4, ... workers."""
    raw = os.path.join(args.out, "raw")
    steps = sorted(int(re.search(r"scale_w(\d+)", p).group(1))
                   for p in glob.glob(os.path.join(raw, "scale_w*.cpus")))
    points = {}
    for w in steps:
        with open(os.path.join(raw, "scale_w%d.cpus" % w)) as f:
            _, srvcpus, clicpus, ct = f.read().split()
        for srv, runs in runs_of(raw, "scale_w%d" % w).items():
            points.setdefault(srv, []).append({
                "workers": w, "server_cpus": srvcpus, "client_cpus": clicpus,
                "client_shares_cpus": w >= args.cpus,
                "rate": median_of(first(d, "rate", (int, float)) for d in runs),
                "per_server_cpu_s": median_of(first(d, "per_server_cpu_s", (int, float))
                                              for d in runs)})
    for srv, pts in points.items():
        base = pts[0] if pts and pts[0]["workers"] == 1 else None
        for pt in pts:
            if base and base["rate"] and pt["rate"] is not None:
                pt["efficiency"] = float("%.3f" % (pt["rate"] / (pt["workers"] * base["rate"])))
    lines = ["scaling: full TLS 1.3 handshakes, %d CPUs, median of %d; servers pinned to CPUs "
             "0..W-1, tlsbench to the rest (at W = %d it shares them: no verdict there)"
             % (args.cpus, args.repeat, args.cpus),
             "%-8s %8s %14s %16s %11s  %s" % ("server", "workers", "handshakes/s",
                                              "per server CPU-s", "efficiency", "cpus (server/client)")]
    for srv, pts in points.items():
        for pt in pts:
            lines.append("%-8s %8d %14s %16s %11s  %s / %s%s" % (
                srv, pt["workers"], fmt(pt["rate"]), fmt(pt["per_server_cpu_s"]),
                "%.2f" % pt["efficiency"] if "efficiency" in pt else "-",
                pt["server_cpus"], pt["client_cpus"],
                " (shared)" if pt["client_shares_cpus"] else ""))
    txt = "".join(l + "\n" for l in lines)
    with open(os.path.join(args.out, "scaling.txt"), "w") as f:
        f.write(txt)
    sys.stdout.write(txt)
    with open(os.path.join(args.out, "scaling.json"), "w") as f:
        json.dump({"tool": "scripts/bench.sh --scaling", "cpus": args.cpus, "repeat": args.repeat,
                   "load_at_start": float(args.load), "nginx": args.nginx_version,
                   "goal": "efficiency >= 0.8 from 1 to 8 workers, above nginx's curve",
                   "points": points}, f, separators=(",", ":"))
        f.write("\n")
    if args.gnuplot and points:
        dat = os.path.join(args.out, "scaling.dat")
        with open(dat, "w") as f:
            for srv, pts in points.items():
                f.write("# %s\n" % srv)
                for pt in pts:
                    f.write("%d %s %s\n" % (pt["workers"], pt["rate"] or "-",
                                            pt["per_server_cpu_s"] or "-"))
                f.write("\n\n")
        names = list(points)
        base = points[names[0]][0]["rate"] if points[names[0]] else None
        plots = ['"%s" index %d using 1:2 with linespoints lw 2 title "%s handshakes/s"'
                 % (dat, i, n) for i, n in enumerate(names)]
        if base:
            plots.append("%s * x with lines dt 2 lc rgb \"gray\" title \"ideal (%s at 1 worker x W)\""
                         % (base, names[0]))
        script = """set terminal pngcairo size 1000,600 noenhanced font ",10"
set output "{out}/scaling.png"
set title "full TLS 1.3 handshakes per second by workers ({cpus} CPUs; tlsbench on the other CPUs)"
set datafile missing "-"
set xlabel "workers"
set ylabel "handshakes per second"
set key top left
set grid
set xrange [0.5:{xmax}]
set logscale x 2
set logscale y 2
plot {plots}
""".format(out=args.out, cpus=args.cpus, xmax=args.cpus * 1.5, plots=", ".join(plots))
        log = os.path.join(raw, "gnuplot.log")
        with open(log, "w") as f:
            if subprocess.run(["gnuplot"], input=script, text=True, stdout=f,
                              stderr=f).returncode != 0:
                note("gnuplot failed: see %s" % log)


TERM_FIGS = [("term_conn", "per_server_cpu_s", "new connections per server CPU-s (handshake + 1 KiB each way)", "higher"),
             ("term_conn", "rate", "new connections per second (wall)", "higher"),
             ("term_bulk", "per_server_cpu_s", "bytes per server CPU-s, one long connection", "higher"),
             ("term_bulk", "mb_per_s", "MB/s, one long connection (wall)", "higher"),
             ("term_idle", "server_rss_per_conn_bytes", "RSS per idle forwarded pair (bytes)", "lower")]
TERM_SERVERS = ["tlskit", "stunnel", "haproxy", "nginx_stream"]


def report_terminators(args):
    """--terminators: the #12 figures, tlsserver --forward beside stunnel, HAProxy, nginx."""
    raw = os.path.join(args.out, "raw")
    skipped = {}
    try:
        with open(os.path.join(raw, "term_skipped.tsv")) as f:
            for line in f:
                srv, why = line.rstrip("\n").split("\t", 1)
                skipped[srv] = why
    except FileNotFoundError:
        pass
    runs = {fig: runs_of(raw, fig) for fig in ("term_conn", "term_bulk", "term_idle")}
    figs = []
    lines = ["TLS terminators in front of a TCP echo backend, loopback, one worker each, "
             "median of %d%s" % (args.repeat, " (--quick: a smoke test)" if args.quick else ""),
             "%-62s" % "figure" + "".join("%14s" % s for s in TERM_SERVERS) + "  tlskit/best"]
    for fig, key, label, better in TERM_FIGS:
        row = {"name": "%s.%s" % (fig, key), "label": label, "better": better}
        cells = []
        for srv in TERM_SERVERS:
            m = median_of(first(d, key, (int, float)) for d in runs[fig].get(srv, []))
            row[srv] = m
            cells.append(fmt(m) if m is not None else ("skipped" if srv in skipped else "-"))
        others = [row[s] for s in TERM_SERVERS[1:] if row[s] is not None]
        best = (max(others) if better == "higher" else min(others)) if others else None
        row["ratio_vs_best"] = ratio(row["tlskit"], best)
        figs.append(row)
        lines.append("%-62s" % label + "".join("%14s" % c for c in cells) + "  " +
                     ("%.2fx" % row["ratio_vs_best"] if row["ratio_vs_best"] is not None else "-"))
    # Where each server's CPU per new connection goes: user space and kernel (stime, in
    # clock ticks), beside OpenSSL's own cost of the handshake measured in memory.
    def per_conn(d, part):
        rate, cpu, sys_s = (first(d, k, (int, float)) for k in
                            ("per_server_cpu_s", "server_cpu_s", "server_sys_s"))
        if not rate or not cpu or sys_s is None:
            return None
        total = 1e6 / rate
        kernel = total * sys_s / cpu
        return {"total": total, "kernel": kernel, "user": total - kernel}[part]
    split = {}
    for part, label in (("total", "server CPU per new connection (us)"),
                        ("user", "  of which user space (us)"),
                        ("kernel", "  of which kernel (us)")):
        row = {"name": "term_conn.%s_us" % part, "label": label.strip(), "better": "lower"}
        for srv in TERM_SERVERS:
            row[srv] = median_of(per_conn(d, part) for d in runs["term_conn"].get(srv, []))
        split[part] = row
        figs.append(row)
        lines.append("%-62s" % label + "".join("%14s" % fmt(row[s]) for s in TERM_SERVERS))
    floors = runs_of(raw, "term_floor")
    floor_us = {}
    for kind in ("tlskit", "openssl"):
        rate = median_of(first(d, "full_handshakes_per_cpu_s", (int, float))
                         for d in floors.get(kind, []))
        floor_us[kind] = 1e6 / rate if rate else None
    if floor_us["tlskit"] and floor_us["openssl"]:
        lines.append("OpenSSL alone (tlsbench-floor: in memory, no socket, server side of one "
                     "full handshake): %.0f us with tlskit's settings (1 ticket, AES-128-GCM "
                     "first), %.0f us with OpenSSL's defaults (2 tickets, the client's "
                     "AES-256-GCM), which the others run"
                     % (floor_us["tlskit"], floor_us["openssl"]))
        best = figs[0]
        others = [best[s] for s in TERM_SERVERS[1:] if best[s]]
        kern = split["kernel"]["tlskit"]
        if others and kern is not None and split["user"]["tlskit"] is not None:
            need = 1e6 / (1.25 * max(others))
            room = need - kern - floor_us["tlskit"]
            lines.append("1.25x the best (%.0f new connections per CPU-s) allows %.0f us per "
                         "connection; less tlsserver's %.0f us in the kernel, that leaves %.0f "
                         "us of user space, %.0f us %s OpenSSL alone needs in memory; "
                         "tlsserver's user space takes %.0f us, %.0f above it"
                         % (max(others), need, kern, need - kern, abs(room),
                            "more than" if room >= 0 else "less than",
                            split["user"]["tlskit"],
                            split["user"]["tlskit"] - floor_us["tlskit"]))
    for srv, why in skipped.items():
        lines.append("%s: skipped: %s" % (srv, why))
    lines.append("goal (#12): tlskit >= 1.25x the best on both per-CPU figures, RSS per pair "
                 "no worse than the best")
    txt = "".join(l + "\n" for l in lines)
    with open(os.path.join(args.out, "terminators.txt"), "w") as f:
        f.write(txt)
    sys.stdout.write(txt)
    with open(os.path.join(args.out, "terminators.json"), "w") as f:
        json.dump({"tool": "scripts/bench.sh --terminators", "repeat": args.repeat,
                   "quick": args.quick, "load_at_start": float(args.load),
                   "skipped": skipped, "figures": figs,
                   "openssl_floor_us_per_full_handshake": floor_us}, f, separators=(",", ":"))
        f.write("\n")


def report(args):
    if args.scaling:
        return report_scaling(args)
    if args.terminators:
        return report_terminators(args)
    raw = os.path.join(args.out, "raw")
    vals = collect(raw, args.rr_many)
    conns = load(os.path.join(raw, "conns10k.tlskit.1.json"))
    check = {"wanted": args.check_conns, "open": first(conns, "open", (int, float)),
             "verified": first(conns, "verified", (int, float))}
    check["ok"] = check["open"] == args.check_conns and check["verified"] == args.check_conns
    with open(os.path.join(args.out, "results.json"), "w") as f:
        f.write(json.dumps(results_json(args, vals, check), ensure_ascii=False,
                           separators=(",", ":")) + "\n")
    txt = results_txt(args, vals, check)
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(txt)
    sys.stdout.write(txt)
    if args.gnuplot:
        chart(args, vals)


def main():
    ap = argparse.ArgumentParser(prog="bench_report.py", usage=__doc__.split("Usage: ")[1])
    ap.add_argument("--out", required=True)
    for opt in ("--repeat", "--workers", "--cpus", "--check-conns", "--rr-many"):
        ap.add_argument(opt, type=int, required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--nginx-version", default="")
    for opt in ("--quick", "--hs-only", "--gnuplot", "--scaling", "--terminators"):
        ap.add_argument(opt, action="store_true")
    report(ap.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())

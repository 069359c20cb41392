#!/usr/bin/env python3
"""Plot bench/longrun.sh's CSV as an SVG: requests/s, CPU µs/request and RSS of the one authgate
process over the run, three panels sharing the time axis; the first and last windows (the minutes
longrun.md compares) shaded, with their medians dashed. Python's standard library only.

    python3 bench/plot_longrun.py [CSV [SVG]] [--date D] [--command C] [--window SECONDS]

CSV defaults to bench/results/longrun.csv, SVG to the same path ending in .svg.
"""
import argparse
import csv
import datetime
import math
import os
import statistics
from xml.sax.saxutils import escape

COLUMNS = ["t_seconds", "requests_per_s", "cpu_us_per_request", "rss_mb", "p99_ms"]


def read_csv(path):
    """The rows of longrun.csv, every column a float."""
    with open(path, newline="") as f:
        return [{k: float(row[k]) for k in COLUMNS} for row in csv.DictReader(f)]


def windows(rows, window):
    """(first rows, last rows, span in seconds): the intervals of the first and of the last
    `window` seconds; half the run each when the run is shorter than two windows."""
    ts = [r["t_seconds"] for r in rows]
    steps = [b - a for a, b in zip([0.0] + ts, ts)]
    interval = statistics.median(steps) if steps else window
    k = max(1, round(window / interval)) if interval > 0 else 1
    k = min(k, max(1, len(rows) // 2))
    return rows[:k], rows[-k:], k * round(interval)


def nice_step(span, ticks=5):
    """A 1-2-5 step giving about `ticks` ticks over span."""
    raw = span / max(ticks, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def label(v, step):
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    if step * 10 ** decimals % 1:  # 2.5, 0.25 …
        decimals += 1
    return f"{v:,.{decimals}f}"


def plot(rows, out, date, command, window, width=900, height=700):
    first, last, span = windows(rows, window)
    ts = [r["t_seconds"] for r in rows]
    t_max = max(ts) if ts else 1.0
    x_step = nice_step(t_max, 8)
    x_end = t_max * 1.02
    left, right, top, bottom, gap = 95, 25, 78, 60, 28
    panel_h = (height - top - bottom - 2 * gap) / 3
    plot_w = width - left - right

    def x(t):
        return left + t / x_end * plot_w

    panels = [
        ("throughput", "requests_per_s", "req/s", "#1f77b4"),
        ("CPU per request", "cpu_us_per_request", "µs", "#d62728"),
        ("RSS (VmRSS)", "rss_mb", "MB", "#2ca02c"),
    ]
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="26" text-anchor="middle" font-size="17" font-weight="bold">'
        f"authgate, one long-lived process, the same token on every request</text>",
        f'<text x="{width / 2}" y="48" text-anchor="middle" font-size="12.5" fill="#333">'
        f"{escape(date)} · {escape(command)}</text>",
        f'<text x="{width / 2}" y="66" text-anchor="middle" font-size="11.5" fill="#555">'
        f"shaded: the first and last {span:g} s compared in longrun.md; dashed: their medians</text>",
    ]
    for i, (title, key, unit, colour) in enumerate(panels):
        y0 = top + i * (panel_h + gap)
        vs = [r[key] for r in rows]
        v_max = max(vs) if vs else 1.0
        y_step = nice_step(v_max * 1.1 or 1.0, 4)
        y_end = math.ceil(v_max * 1.1 / y_step) * y_step or y_step

        def y(v, y0=y0, y_end=y_end):
            return y0 + panel_h - v / y_end * panel_h

        svg.append(f'<g><title>{escape(title)}</title>')
        for part in (first, last):  # the windows compared
            if part:
                x_a = x(part[0]["t_seconds"] - span / len(part))
                x_b = x(part[-1]["t_seconds"])
                svg.append(f'<rect x="{max(x_a, left):.1f}" y="{y0:.1f}" width="{x_b - max(x_a, left):.1f}" '
                           f'height="{panel_h:.1f}" fill="{colour}" fill-opacity="0.08"/>')
                m = statistics.median(r[key] for r in part)
                svg.append(f'<line x1="{max(x_a, left):.1f}" x2="{x_b:.1f}" y1="{y(m):.1f}" y2="{y(m):.1f}" '
                           f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/>')
        v = 0.0
        while v <= y_end + y_step / 1000:  # horizontal grid and y tick labels
            svg.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                       f'stroke="#ddd" stroke-width="1"/>')
            svg.append(f'<text x="{left - 7}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11.5">'
                       f"{label(v, y_step)}</text>")
            v += y_step
        t = 0.0
        while t <= x_end:  # vertical grid; labels on the bottom panel only
            svg.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0:.1f}" y2="{y0 + panel_h:.1f}" '
                       f'stroke="#eee" stroke-width="1"/>')
            if i == len(panels) - 1:
                svg.append(f'<text x="{x(t):.1f}" y="{y0 + panel_h + 17:.1f}" text-anchor="middle" '
                           f'font-size="11.5">{label(t, x_step)}</text>')
            t += x_step
        svg.append(f'<rect x="{left}" y="{y0:.1f}" width="{plot_w}" height="{panel_h:.1f}" '
                   f'fill="none" stroke="#333" stroke-width="1"/>')
        points = " ".join(f"{x(r['t_seconds']):.1f},{y(r[key]):.1f}" for r in rows)
        svg.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in rows:
            svg.append(f'<circle cx="{x(r["t_seconds"]):.1f}" cy="{y(r[key]):.1f}" r="2.6" fill="{colour}"/>')
        cy = y0 + panel_h / 2
        svg.append(f'<text transform="translate(22 {cy:.1f}) rotate(-90)" text-anchor="middle" '
                   f'font-size="13">{escape(title)} ({escape(unit)})</text>')
        svg.append("</g>")
    svg.append(f'<text x="{left + plot_w / 2}" y="{height - 16}" text-anchor="middle" font-size="13">'
               f"time since the first interval started (s); each point: one interval, plotted at its end</text>")
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="?", default="bench/results/longrun.csv")
    parser.add_argument("svg", nargs="?")
    parser.add_argument("--date", help="for the title (default: the CSV's modification time)")
    parser.add_argument("--command", default="bash bench/longrun.sh", help="for the title")
    parser.add_argument("--window", type=float, default=60, help="seconds compared at each end")
    args = parser.parse_args()
    out = args.svg or os.path.splitext(args.csv)[0] + ".svg"
    date = args.date or datetime.datetime.fromtimestamp(
        os.path.getmtime(args.csv), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = read_csv(args.csv)
    if not rows:
        raise SystemExit(f"{args.csv}: no rows")
    plot(rows, out, date, args.command, args.window)


if __name__ == "__main__":
    main()

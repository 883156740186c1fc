"""Plots the soak's CSV (seconds, requests done per second, server RSS in KiB) as an SVG:
throughput and memory over time. Usage: python3 plot_soak.py soak.csv > soak.svg"""

import csv
import sys

rows = [r for r in csv.reader(open(sys.argv[1])) if r and r[0].isdigit()]
t = [int(r[0]) for r in rows]
rate = [float(r[1]) for r in rows]
rss = [int(r[2]) / 1024 for r in rows if len(r) > 2 and r[2]]

W, H, L, R, T, B = 720, 300, 60, 60, 30, 40
pw, ph = W - L - R, H - T - B
tmax = max(t)
rmax = max(rate) * 1.2 or 1
mmax = max(rss) * 1.2 or 1


def x(v):
    return L + pw * v / tmax


def y(v, top):
    return T + ph - ph * v / top


def path(values, top):
    return " ".join(
        f"{'M' if i == 0 else 'L'}{x(tv):.1f},{y(v, top):.1f}" for i, (tv, v) in enumerate(zip(t, values))
    )


out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
    f'<rect width="{W}" height="{H}" fill="white"/>',
    f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">Soak: throughput and server memory over time</text>',
    f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="black"/>',
    f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="#1f77b4"/>',
    f'<line x1="{L + pw}" y1="{T}" x2="{L + pw}" y2="{T + ph}" stroke="#d62728"/>',
]
for i in range(0, 6):
    tv = tmax * i / 5
    out.append(f'<text x="{x(tv):.1f}" y="{T + ph + 15}" text-anchor="middle">{tv:.0f} s</text>')
    rv = rmax * i / 5
    out.append(f'<text x="{L - 5}" y="{y(rv, rmax):.1f}" text-anchor="end" fill="#1f77b4">{rv:.0f}</text>')
    mv = mmax * i / 5
    out.append(f'<text x="{L + pw + 5}" y="{y(mv, mmax):.1f}" fill="#d62728">{mv:.0f}</text>')
out.append(f'<text x="{L - 45}" y="{T + ph / 2}" transform="rotate(-90 {L - 45} {T + ph / 2})" text-anchor="middle" fill="#1f77b4">requests done / s</text>')
out.append(f'<text x="{L + pw + 45}" y="{T + ph / 2}" transform="rotate(90 {L + pw + 45} {T + ph / 2})" text-anchor="middle" fill="#d62728">server RSS (MiB)</text>')
out.append(f'<path d="{path(rate, rmax)}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
if len(rss) == len(t):
    out.append(f'<path d="{path(rss, mmax)}" fill="none" stroke="#d62728" stroke-width="2"/>')
out.append("</svg>")
print("\n".join(out))

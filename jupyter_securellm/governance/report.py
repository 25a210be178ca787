"""`audit report`: calls, tokens, cost, denials and latency from audit logs, as text, JSON or one HTML page.

The HTML page is self-contained (inline CSS and SVG, no script, no CDN): spend per day per user,
denials per day by type, and the latency distribution. Admins would rather look than read.
Every value shown comes from the log and is HTML-escaped.
"""
from __future__ import annotations

import html
import json
import statistics
from collections import defaultdict
from typing import Iterable

LAT_BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, float("inf")]
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]


def summarise(records: Iterable[dict], by: str = "user") -> dict:
    """Aggregate call and decision records; `by` is user, model or day."""
    groups: dict[str, dict] = defaultdict(lambda: {"calls": 0, "errors": 0, "denials": 0, "tokens_in": 0,
                                                   "tokens_out": 0, "cost_usd": 0.0, "unpriced_calls": 0,
                                                   "_lat": []})
    spend: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # day -> user -> usd
    denials: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))    # day -> type -> n
    lat_all: list[float] = []
    total = {"records": 0, "calls": 0, "denials": 0, "alerts": 0}
    for r in records:
        total["records"] += 1
        typ = r.get("type")
        day = str(r.get("time", ""))[:10]
        key = {"user": r.get("user"), "model": r.get("model"), "day": day}.get(by) or "-"
        if typ == "alert":
            total["alerts"] += 1
            continue
        g = groups[key]
        if typ == "decision" and r.get("decision") == "deny":
            g["denials"] += 1
            total["denials"] += 1
            denials[day][r.get("error_type") or "denied"] += 1
        elif typ == "call":
            g["calls"] += 1
            total["calls"] += 1
            if r.get("status") not in (None, "ok"):
                g["errors"] += 1
            g["tokens_in"] += int(r.get("tokens_in") or 0)
            g["tokens_out"] += int(r.get("tokens_out") or 0)
            if r.get("cost_usd") is not None:
                g["cost_usd"] += float(r["cost_usd"])
                spend[day][r.get("user") or "-"] += float(r["cost_usd"])
            elif r.get("price_known") is False:
                g["unpriced_calls"] += 1
            if r.get("latency_ms") is not None:
                g["_lat"].append(float(r["latency_ms"]))
                lat_all.append(float(r["latency_ms"]))
    rows = {}
    for k, g in sorted(groups.items()):
        lat = sorted(g.pop("_lat"))
        g["latency_ms_p50"] = round(statistics.median(lat), 3) if lat else None
        g["latency_ms_p95"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 3) if lat else None
        g["cost_usd"] = round(g["cost_usd"], 6)
        if g["calls"] or g["denials"]:
            rows[k] = g
    hist = [0] * len(LAT_BUCKETS)
    for v in lat_all:
        for i, edge in enumerate(LAT_BUCKETS):
            if v <= edge:
                hist[i] += 1
                break
    return {"by": by, "total": total, "rows": rows,
            "spend_per_day_per_user": {d: dict(u) for d, u in sorted(spend.items())},
            "denials_per_day": {d: dict(t) for d, t in sorted(denials.items())},
            "latency_histogram_ms": {("<=" + (f"{e:g}" if e != float("inf") else "inf")): n
                                     for e, n in zip(LAT_BUCKETS, hist)}}


def format_text(s: dict) -> str:
    cols = ["calls", "errors", "denials", "tokens_in", "tokens_out", "cost_usd", "unpriced_calls",
            "latency_ms_p50", "latency_ms_p95"]
    head = [s["by"]] + cols
    body = [[k] + ["-" if g[c] is None else str(g[c]) for c in cols] for k, g in s["rows"].items()]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in body]
    t = s["total"]
    lines.append(f"\n{t['records']} records: {t['calls']} calls, {t['denials']} denials, {t['alerts']} alerts")
    return "\n".join(lines) + "\n"


def format_json(s: dict) -> str:
    return json.dumps(s, indent=2, sort_keys=True) + "\n"


# -- HTML with inline SVG -------------------------------------------------------------------------------

def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _bar_chart(title: str, categories: list[str], series: dict[str, list[float]], unit: str = "",
               width: int = 760, height: int = 260) -> str:
    """Stacked bars: one bar per category, one colour per series, with a legend."""
    pad_l, pad_b, pad_t = 60, 40, 30
    if not categories:
        return f'<figure><figcaption>{_esc(title)}</figcaption><p class="empty">no data</p></figure>'
    totals = [sum(series[s][i] for s in series) for i in range(len(categories))]
    top = max(totals) or 1
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    bw = plot_w / len(categories)
    parts = [f'<svg role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height + 20 * ((len(series) + 3) // 4)}" '
             f'width="{width}" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0, 0.5, 1):
        y = pad_t + plot_h * (1 - frac)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{_esc(f"{top * frac:.4g}")}{_esc(unit)}</text>')
    for i, cat in enumerate(categories):
        y0 = pad_t + plot_h
        for j, (name, vals) in enumerate(series.items()):
            h = plot_h * vals[i] / top
            if h <= 0:
                continue
            y0 -= h
            parts.append(f'<rect x="{pad_l + i * bw + bw * 0.15:.1f}" y="{y0:.1f}" width="{bw * 0.7:.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{_esc(cat)} {_esc(name)}: '
                         f'{_esc(f"{vals[i]:.6g}")}{_esc(unit)}</title></rect>')
        if len(categories) <= 31 or i % max(1, len(categories) // 15) == 0:
            parts.append(f'<text x="{pad_l + (i + 0.5) * bw:.1f}" y="{height - pad_b + 16}" text-anchor="middle" '
                         f'font-size="10">{_esc(cat[5:] if len(cat) == 10 else cat)}</text>')
    for j, name in enumerate(series):
        x, y = pad_l + (j % 4) * 170, height + 4 + 20 * (j // 4)
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
                     f'<text x="{x + 16}" y="{y + 11}" font-size="11">{_esc(name)}</text>')
    parts.append("</svg>")
    return f'<figure><figcaption>{_esc(title)}</figcaption>{"".join(parts)}</figure>'


def format_html(s: dict, title: str = "jupyter-securellm audit report") -> str:
    days = list(s["spend_per_day_per_user"])
    users = sorted({u for d in s["spend_per_day_per_user"].values() for u in d})
    spend = {u: [s["spend_per_day_per_user"][d].get(u, 0.0) for d in days] for u in users}
    ddays = list(s["denials_per_day"])
    kinds = sorted({k for d in s["denials_per_day"].values() for k in d})
    den = {k: [s["denials_per_day"][d].get(k, 0) for d in ddays] for k in kinds}
    lat_cats = list(s["latency_histogram_ms"])
    lat = {"calls": [float(v) for v in s["latency_histogram_ms"].values()]}
    cols = ["calls", "errors", "denials", "tokens_in", "tokens_out", "cost_usd", "unpriced_calls",
            "latency_ms_p50", "latency_ms_p95"]
    rows = "".join("<tr><th>" + _esc(k) + "</th>" + "".join(f"<td>{_esc('-' if g[c] is None else g[c])}</td>"
                                                              for c in cols) + "</tr>"
                   for k, g in s["rows"].items())
    t = s["total"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} th{{text-align:left;background:#f4f4f4}}
figure{{margin:1.5em 0}} figcaption{{font-weight:600;margin-bottom:.5em}} .empty{{color:#888}}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>{t['records']} records: {t['calls']} calls, {t['denials']} denials, {t['alerts']} alerts.</p>
{_bar_chart("Spend per day per user (USD)", days, spend, " $")}
{_bar_chart("Denials per day, by type", ddays, den)}
{_bar_chart("Latency of calls (ms buckets)", lat_cats, lat)}
<h2>By {_esc(s['by'])}</h2>
<table><tr><th>{_esc(s['by'])}</th>{''.join(f'<th>{_esc(c)}</th>' for c in cols)}</tr>{rows}</table>
</body></html>
"""

"""The reports of ``vbg bench``: the table on stdout, ``--markdown`` and ``--plot`` (matplotlib, Agg), from the
``vbg.bench/1`` document of :func:`vbg_app.tools.bench.run_bench`."""
from __future__ import annotations

import numpy as np

from vbg_app.tools.bench_measure import STAGES


def _f(x, fmt="{:.1f}", none="–") -> str:
    return none if x is None else fmt.format(x)


def _threads_label(r: dict, cores: int) -> str:
    t = r["threads"]
    return "own" if t is None else (f"all({cores})" if t == 0 else str(t))


COLUMNS = ("engine", "provider", "threads", "size", "model ms med/p95", "pipeline fps",
           "capture", "infer", "filter", "compose", "output", "CPU ms/frame", "CPU @paced", "RSS/peak MiB", "status")


def table_rows(doc: dict) -> list[list[str]]:
    cores = doc["machine"]["usable_cores"]
    rows = []
    for r in doc["results"]:
        size = "x".join(map(str, r["size_wh"])) if r["size_wh"] else "–"
        status = "ok" if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        if r["status"] != "ok" and r["fix"]:
            status += f" — {r['fix']}"
        m, p, paced = r["model"] or {}, r["pipeline"] or {}, r["paced"] or {}
        st = p.get("stage_ms") or {}
        paced_txt = (f"{_f(paced.get('cpu_pct'), '{:.0f}')}% @{_f(paced.get('fps'), '{:.0f}')}fps"
                     if paced else "–")
        rows.append([
            r["engine"], r["provider_ran"] or r["provider"], _threads_label(r, cores), size,
            f"{_f(m.get('median_ms'))}/{_f(m.get('p95_ms'))}" if m else "–",
            _f(p.get("fps")), *(_f(st.get(s)) for s in STAGES),
            _f(r["cpu_ms_per_frame"]), paced_txt,
            f"{_f(r['rss_mb'], '{:.0f}')}/{_f(r['peak_rss_mb'], '{:.0f}')}", status,
        ])
    return rows


def _machine_lines(doc: dict) -> list[str]:
    m, s = doc["machine"], doc["settings"]
    gpus = ", ".join(m["gpus"]) or "none found"
    lines = [
        f"machine: {m['cpu']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores; GPU: {gpus}; "
        f"{m['os']}; Python {m['python']}",
        f"onnxruntime {m['onnxruntime']} (providers: {', '.join(m['onnxruntime_providers'])}); "
        f"opencv {m['opencv']}; mediapipe {m['mediapipe'] or 'not installed'}",
        f"load average before/after: {m['loadavg_start']} / {m['loadavg_end']} (others' load makes numbers lower)",
        f"source {s['source']}; background {s['background']}; smoothing {s['smoothing']}; {s['frames']} frames after "
        f"{s['warmup']} warm-up per configuration; paced run at {s['paced_fps'] or 'off'} fps"
        + ("; battery saver on" if s.get("battery_saver") else ""),
    ]
    for p in doc["providers"]:
        if p["status"] in ("not_installed", "unavailable"):
            lines.append(f"provider {p['provider']}: {p['status'].replace('_', ' ')} — {p['detail']}"
                         + (f"; fix: {p['fix']}" if p["fix"] else ""))
    return lines


# the stages each of Pipeline.run's two threads does (vbg_app/pipeline.py: _capture on the producer thread,
# _emit on the calling one); tests/test_bench.py checks it against a real run
THREADS = (("capture", "inference"), ("filter", "composite", "output"))


def _halves() -> str:
    return " and ".join("+".join(t) for t in THREADS)


NOTES = ("ms are medians; pipeline fps = output frames / wall time (two overlapping threads, so 1000/fps ≈ the slower "
         f"of {_halves()}); CPU ms/frame = process CPU time (all threads) per frame at full "
         "speed; CPU @paced = share of all cores busy when fed at the paced rate (what the meeting app loses); peak RSS "
         "is process-wide and monotonic unless --isolate.")


def format_table(doc: dict) -> str:
    rows = table_rows(doc)
    ok_rows = [r for r in rows if r[-1] == "ok"]
    bad_rows = [r for r in rows if r[-1] != "ok"]
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in ok_rows)) if ok_rows else len(COLUMNS[i])
              for i in range(len(COLUMNS) - 1)]
    head = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))
    lines = _machine_lines(doc) + ["", head, "-" * len(head)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in ok_rows]
    for r in bad_rows:
        lines.append(f"{r[0]}  {r[1]}  threads {r[2]}  {r[3]}: {r[-1]}")
    lines += ["", NOTES]
    return "\n".join(lines)


def format_markdown(doc: dict) -> str:
    rows = table_rows(doc)
    out = [f"# vbg bench ({doc['created']}, vbg {doc['vbg_version']})", ""]
    out += [f"- {line}" for line in _machine_lines(doc)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in rows]
    out += ["", NOTES, ""]
    return "\n".join(out)


def write_plot(doc: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = doc["machine"]["usable_cores"]
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    labels = [f"{r['engine']} · {r['provider_ran']}×{_threads_label(r, cores)} · {r['size_wh'][0]}x{r['size_wh'][1]}"
              for r in ok]
    fps = [r["pipeline"]["fps"] for r in ok]
    model_fps = [1e3 / r["model"]["median_ms"] if r["model"]["median_ms"] else 0 for r in ok]
    engines = list(dict.fromkeys(r["engine"] for r in ok))
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(1, len(ok))), dpi=100)
    y = np.arange(len(ok))
    ax.barh(y + 0.2, model_fps, height=0.38, color=[colors(engines.index(r["engine"]) % 10) for r in ok], alpha=0.35,
            label="model only (1000 / median ms)")
    ax.barh(y - 0.2, fps, height=0.38, color=[colors(engines.index(r["engine"]) % 10) for r in ok],
            label="end-to-end pipeline")
    for yi, v in zip(y, fps):
        ax.text(v, yi - 0.2, f" {v:.0f}", va="center", fontsize=8)
    for line in (30, 60):
        ax.axvline(line, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("frames per second")
    ax.set_title(f"vbg bench — {doc['machine']['cpu']} ({cores} cores), background {doc['settings']['background']}, "
                 f"smoothing {doc['settings']['smoothing']}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

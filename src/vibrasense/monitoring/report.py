"""A drift report written as JSON (for programs) and as one self-contained HTML page (for people)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from vibrasense.errors import OutputError
from vibrasense.monitoring.drift import Drift, DriftReport, MachineDrift

JSON_FILE = "drift.json"
HTML_FILE = "drift.html"
STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
h2.drift { color: #b00020; } h2.ok { color: #1b6e20; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drifted td { background: #fde7e9; font-weight: 600; }
.fault { color: #b00020; font-weight: 600; }
"""


def write_report(report: DriftReport, out: Path) -> tuple[Path, Path]:
    """Write ``drift.json`` and ``drift.html`` into ``out``; returns both paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / JSON_FILE
        json_path.write_text(json.dumps(finite(report.to_dict()), indent=2, default=_json_default, allow_nan=False))
        html_path = out / HTML_FILE
        html_path.write_text(render_html(report))
    except OSError as error:
        raise OutputError(f"cannot write the drift report into {out}: {error.strerror or error}") from None
    return json_path, html_path


def render_html(report: DriftReport) -> str:
    """The whole report as one HTML page: a verdict per machine, its reasons and every comparison."""
    verdict = "drift detected" if report.drifted else "no drift"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>vibrasense drift: {verdict}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Drift: {verdict}</h1>",
        f"<p>{_e(report.current)} against {_e(report.reference)}, {report.created_at:%Y-%m-%d %H:%M UTC}. "
        f"A comparison drifts when Kolmogorov–Smirnov rejects at α = {report.alpha:g} (Bonferroni over the "
        f"machine's comparisons) and the Wasserstein distance is at least {report.min_shift:g} reference SD.</p>",
    ]
    parts += [_machine_section(machine) for machine in report.machines]
    parts.append("</body></html>")
    return "\n".join(parts)


def _machine_section(machine: MachineDrift) -> str:
    state = "drift" if machine.drifted else "ok"
    rows = [
        f"<h2 class='{state}'>{_e(machine.machine_id)}: {'drift' if machine.drifted else 'no drift'}</h2>",
        f"<p>{machine.n_current} recent recordings against {machine.n_reference} training recordings.</p>",
    ]
    if machine.note:
        rows.append(f"<p>{_e(machine.note)}</p>")
    rows += [f"<p class='fault'>sensor {_e(f.kind)}: {_e(f.detail)}</p>" for f in machine.sensor_faults]
    if machine.compared:
        rows.append(
            "<table><tr><th>quantity</th><th>reference median</th><th>current median</th><th>PSI</th>"
            "<th>KS statistic</th><th>KS p</th><th>Wasserstein</th><th>shift (SD)</th></tr>"
        )
        rows += [_comparison_row(d) for d in machine.compared]
        rows.append("</table>")
    return "\n".join(rows)


def _comparison_row(drift: Drift) -> str:
    c = drift.comparison
    cells = [c.reference_median, c.current_median, c.psi, c.ks_statistic, c.ks_pvalue, c.wasserstein, c.shift]
    shown = "".join(f"<td>{value:.4g}</td>" for value in cells)
    return f"<tr class='{'drifted' if drift.drifted else ''}'><td>{_e(drift.name)}</td>{shown}</tr>"


def _e(text: object) -> str:
    return html.escape(str(text))


def _json_default(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[attr-defined]
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def finite(value: object) -> object:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value

"""The report's "Review less" sections: selective-accuracy curves and the audit of auto-accepted drafts.

Markdown gives the primary field's curve as a table (every field's is in metrics.json); HTML draws
every field's curves, blind and assisted on one chart, and tabulates the primary field. The audit
lines state the realised error of each auto-accept policy on its audit slice against its promise.
"""

from __future__ import annotations

from html import escape

from annotator.evaluate import svg
from annotator.evaluate.model import Curve, EvalMetrics
from annotator.evaluate.tables import fmt, md_table

COLOURS = {"blind": "#1f77b4", "assisted": "#ff7f0e", "gold": "#2ca02c"}
INTRO = ("Accuracy of the drafts whose confidence is at least a threshold, against the share of drafts that "
         "threshold accepts (most confident first); 95% bootstrap intervals. Read the blind curve: assisted reviews "
         "are anchored to the draft. `annotator calibrate` turns such a curve into a threshold with a guarantee.")


def _rows(curve: Curve) -> list[list[str]]:
    return [[f"{p.threshold:g}", f"{p.share:.1%}", str(p.n), fmt(p.accuracy, p.ci95)] for p in curve.points]


def _lead(curves: dict[str, Curve]) -> tuple[str, Curve] | None:
    for name in ("blind", "gold", "assisted"):
        if name in curves:
            return name, curves[name]
    return None


def _audit_lines(m: EvalMetrics) -> list[str]:
    return [f"{' and '.join(a.fields)} at confidence >= {a.threshold:g} (promised: wrong at most {a.risk:.1%}, "
            f"{1 - a.delta:.0%} certain): {a.errors} of {a.n} audited drafts wrong against blind reviews, "
            f"{fmt(a.error_rate, a.ci95)}" + (" — above the promise" if a.exceeded else "") for a in m.audit]


def selective_markdown(m: EvalMetrics, primary: str) -> str:
    parts = []
    curves = m.selective.get(primary)
    lead = _lead(curves) if curves else None
    if lead:
        name, curve = lead
        parts.append(f"## Review less: selective accuracy of `{primary}` ({name} reviews)\n\n{INTRO}\n\n"
                     + md_table(["confidence >=", "share accepted", "n", "accuracy [95% CI]"], _rows(curve)))
    if m.audit:
        parts.append("## Audit of auto-accepted drafts\n\n" + "\n".join(f"- {line}" for line in _audit_lines(m)))
    return "\n\n".join(parts)


def selective_html(m: EvalMetrics, primary: str) -> str:
    if not m.selective and not m.audit:
        return ""
    html = ""
    if m.selective:
        plots = [svg.selective([(name, COLOURS[name], c.points) for name, c in curves.items()],
                               f"{field}: selective accuracy, 95% bands") for field, curves in m.selective.items()]
        html += f"<h2>Review less: selective accuracy</h2><p>{escape(INTRO.replace('`', ''))}</p>"
        html += '<div class="plots">' + "".join(f"<figure>{p}</figure>" for p in plots) + "</div>"
        lead = _lead(m.selective.get(primary, {}))
        if lead:
            name, curve = lead
            header = "".join(f"<th>{h}</th>" for h in ("confidence &gt;=", "share accepted", "n", "accuracy [95% CI]"))
            body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in _rows(curve))
            html += f"<h3>{escape(primary)}, {name} reviews</h3><table><tr>{header}</tr>{body}</table>"
    if m.audit:
        html += "<h2>Audit of auto-accepted drafts</h2><ul>" + "".join(
            f"<li>{escape(line)}</li>" for line in _audit_lines(m)) + "</ul>"
    return html

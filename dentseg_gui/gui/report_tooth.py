"""The whole-tooth page of the PDF report: a table of the measurements per plane with their summary,
and a plot of the PAB thickness at each level against the plane's offset (``core.whole_tooth``).

Drawn with ``QPainter`` into a ``QImage`` (no chart library), so it works headless
like the rest of ``report_pdf``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..core.whole_tooth import SUMMARY_KEYS, THICKNESS_PLOT_KEYS, VOLUME_METHOD, ToothSummary

#: one colour per thickness level (25, 50, 75, 90 % of the root length): colour-blind-safe (Okabe-Ito)
LEVEL_COLOURS = ("#0072B2", "#009E73", "#E69F00", "#CC79A7")
_LABELS = {"pab_thickness_25_mm": "Thickness 25 % of L", "pab_thickness_50_mm": "Thickness 50 % of L",
           "pab_thickness_75_mm": "Thickness 75 % of L", "pab_thickness_90_mm": "Thickness 90 % of L",
           "pab_thickness_3mm_mm": "Thickness 3 mm apical of CEJ",
           "pab_thickness_6mm_mm": "Thickness 6 mm apical of CEJ",
           "pab_thickness_9mm_mm": "Thickness 9 mm apical of CEJ", "pab_area_mm2": "PAB area"}


def _e(x: Any) -> str:
    return html.escape(str(x))


def thickness_plot(summary: ToothSummary, width: int = 960, height: int = 520):
    """QImage: PAB thickness (mm) at 25/50/75/90 % of L against the offset (mm, + distal)."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

    img = QImage(width, height, QImage.Format.Format_RGB32)
    img.fill(Qt.GlobalColor.white)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPixelSize(max(12, height // 30))
    p.setFont(font)
    left, right, top, bottom = int(width * 0.09), int(width * 0.78), int(height * 0.06), int(height * 0.86)
    offsets = summary.offsets
    values = [v for k in THICKNESS_PLOT_KEYS for v in (pl.measurements.values.get(k) for pl in summary.planes)
              if v is not None]
    x0, x1 = (min(offsets), max(offsets)) if offsets else (-1.0, 1.0)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1.0, x1 + 1.0
    pad = 0.06 * (x1 - x0)
    x0, x1 = x0 - pad, x1 + pad
    y1 = max(values) * 1.15 if values and max(values) > 0 else 1.0
    y0 = 0.0

    def px(o: float, v: float) -> QPointF:
        return QPointF(left + (o - x0) / (x1 - x0) * (right - left), bottom - (v - y0) / (y1 - y0) * (bottom - top))

    p.setPen(QPen(QColor("#bbbbbb"), 1))
    ticks = _ticks(y0, y1)
    for t in ticks:
        a = px(x0, t)
        p.drawLine(QPointF(left, a.y()), QPointF(right, a.y()))
        p.setPen(QPen(QColor("#333333"), 1))
        p.drawText(QRectF(0, a.y() - 10, left - 6, 20), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   f"{t:g}")
        p.setPen(QPen(QColor("#bbbbbb"), 1))
    p.setPen(QPen(QColor("#333333"), 1.5))
    p.drawLine(QPointF(left, bottom), QPointF(right, bottom))
    p.drawLine(QPointF(left, top), QPointF(left, bottom))
    for o in offsets:
        a = px(o, y0)
        p.drawLine(a, QPointF(a.x(), a.y() + 5))
        p.drawText(QRectF(a.x() - 30, bottom + 6, 60, 20), Qt.AlignmentFlag.AlignHCenter, f"{o:+g}")
    p.drawText(QRectF(left, bottom + 26, right - left, 24), Qt.AlignmentFlag.AlignHCenter,
               "offset along the mesio-distal direction (mm, + = distal)")
    p.save()
    p.translate(14, (top + bottom) / 2)
    p.rotate(-90)
    p.drawText(QRectF(-120, -10, 240, 24), Qt.AlignmentFlag.AlignHCenter, "PAB thickness (mm)")
    p.restore()
    for key, colour in zip(THICKNESS_PLOT_KEYS, LEVEL_COLOURS):
        pts = [(pl.offset_mm, pl.measurements.values.get(key)) for pl in summary.planes]
        pts = [px(o, v) for o, v in pts if v is not None]
        pen = QPen(QColor(colour), 2.5)
        p.setPen(pen)
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        p.setBrush(QColor(colour))
        for a in pts:
            p.drawEllipse(a, 4.5, 4.5)
    ly = top + 10
    for key, colour in zip(THICKNESS_PLOT_KEYS, LEVEL_COLOURS):
        p.setPen(QPen(QColor(colour), 3))
        p.drawLine(QPointF(right + 18, ly), QPointF(right + 48, ly))
        p.setPen(QPen(QColor("#222222"), 1))
        p.drawText(QRectF(right + 54, ly - 10, width - right - 56, 22), Qt.AlignmentFlag.AlignVCenter,
                   key.split("_")[2] + " % of L")
        ly += 28
    p.end()
    return img


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = 10 ** int(f"{span:e}".split("e")[1])
    for m in (1, 2, 5, 10):
        if span / (step * m / 10) <= 6:
            step = step * m / 10
            break
    out, t = [], 0.0
    while t <= hi + 1e-9:
        if t >= lo - 1e-9:
            out.append(round(t, 6))
        t += step
    return out


def tooth_html(summary: ToothSummary, plot_name: str, plot_w: int, plot_h: int, when: str) -> str:
    """The whole-tooth page: title, the plot, the per-plane table with mean/min/max, the PAB volume."""
    head = "".join(f"<th align=right>{o:+g}</th>" for o in summary.offsets)
    body = []
    for key in SUMMARY_KEYS:
        st = summary.stats[key]
        unit = "mm²" if key.endswith("mm2") else "mm"
        cells = "".join(f"<td align=right>{v:.2f}</td>" if v is not None else "<td align=right>–</td>"
                        for v in (pl.measurements.values.get(key) for pl in summary.planes))
        summ = (f"<td align=right><b>{st.mean:.2f}</b></td><td align=right>{st.min:.2f}</td>"
                f"<td align=right>{st.max:.2f}</td>" if st.n else "<td></td><td></td><td></td>")
        body.append(f"<tr><td>{_e(_LABELS[key])} ({unit})</td>{cells}{summ}</tr>")
    vol = (f"<b>{summary.pab_volume_mm3:.1f} mm³</b> ({_e(VOLUME_METHOD)}, offsets "
           f"{summary.offsets[0]:+g} to {summary.offsets[-1]:+g} mm)" if summary.pab_volume_mm3 is not None
           else f'<span style="color:#9a6a00">missing: {_e(summary.pab_volume_missing)}</span>')
    notes = "".join(f'<br><span style="color:#9a6a00">{_e(n)}</span>' for n in summary.notes)
    img = f'<p align=center><img src="{_e(plot_name)}" width={plot_w} height={plot_h}></p>' if plot_name else ""
    return f"""
<table width=100% cellspacing=0 cellpadding=0><tr>
<td><span style="font-size:15pt; font-weight:bold">Whole tooth {summary.tooth}</span><br>
<span style="color:#555">{len(summary.planes)} parasagittal plane{'s' if len(summary.planes) != 1 else ''} of
{_e(Path(summary.volume).name if summary.volume else 'the volume')}{f' (series {_e(summary.series_uid)})' if summary.series_uid else ''}</span></td>
<td align=right style="color:#555">{_e(when)}</td></tr></table>
<hr>
{img}
<table width=100% border=1 cellspacing=0 cellpadding=2 style="border-color:#bbb; font-size:8.5pt">
<tr style="background:#e8edf3"><th align=left>Offset (mm, + distal)</th>{head}
<th align=right>mean</th><th align=right>min</th><th align=right>max</th></tr>
{''.join(body)}
</table>
<p style="font-size:9pt">PAB volume: {vol}{notes}</p>
<p style="font-size:7.5pt; color:#777">Values per plane computed from the regions and landmarks of each
slice; a dash is a value that could not be measured on that plane (see its case page). Thickness 0 means no
bone at that level. For research use; a clinician must review every slice.</p>
"""

"""Drawing the annotation and the measurement frame: live canvas items and export images.

Two consumers share the same geometry (``core.measurements.overlay_geometry``)
and the same look (``style.py``):

* ``MeasurementOverlay`` - the pyqtgraph items on the interactive canvas: the
  CEJ-apex frame (origin, long axis, perpendicular), the level lines and PAB
  thickness chords at 25/50/75/90 % of the root length, the crest level, with
  small labels. One path item per line style, a handful of text items.
* ``render_overlay_image`` - a QPainter rendering of image + regions +
  landmarks + frame into a ``QImage`` at native resolution (cropped to the
  tooth), for PNG/PDF export; it needs only a ``QGuiApplication``, so the CLI's
  PDF report can use it headless.
"""

from __future__ import annotations

import json
from typing import Iterable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from shapely.geometry import MultiPolygon

from ..core.annotation import LANDMARKS, Annotation
from ..core.geometry import as_multipolygon
from ..core.image import SliceImage
from ..core.measurements import MeasurementSet, OverlayGeometry, orientation_of, overlay_geometry
from . import style

Point = tuple[float, float]


# --------------------------------------------------------------------------- paths


def multipolygon_path(geom: MultiPolygon | None, offset: Point = (0.0, 0.0),
                      scale: float = 1.0) -> QtGui.QPainterPath:
    """One QPainterPath for a whole region (every ring a subpath, odd-even fill for holes)."""
    path = QtGui.QPainterPath()
    path.setFillRule(QtCore.Qt.FillRule.OddEvenFill)
    geom = as_multipolygon(geom)
    off = np.asarray(offset, float)
    for poly in geom.geoms:
        for ring in (poly.exterior, *poly.interiors):
            c = (np.asarray(ring.coords, float)[:, :2] - off) * scale
            if len(c) < 3:
                continue
            sub = pg.arrayToQPath(c[:, 0], c[:, 1], connect="all", finiteCheck=False)
            sub.closeSubpath()
            path.addPath(sub)
    return path


def segments_path(segments: Iterable[tuple[Point, Point]], offset: Point = (0.0, 0.0),
                  scale: float = 1.0) -> QtGui.QPainterPath:
    """One QPainterPath holding many separate line segments."""
    path = QtGui.QPainterPath()
    ox, oy = offset
    for (x0, y0), (x1, y1) in segments:
        path.moveTo((x0 - ox) * scale, (y0 - oy) * scale)
        path.lineTo((x1 - ox) * scale, (y1 - oy) * scale)
    return path


def polyline_path(points: np.ndarray) -> QtGui.QPainterPath:
    p = np.asarray(points, float).reshape(-1, 2)
    if len(p) < 2:
        return QtGui.QPainterPath()
    return pg.arrayToQPath(p[:, 0], p[:, 1], connect="all", finiteCheck=False)


def _direction_anchor(p: Point, away_from: Point) -> tuple[float, float]:
    """TextItem anchor so a label at ``p`` sits on the side facing away from ``away_from``."""
    return (0.0, 0.5) if p[0] >= away_from[0] else (1.0, 0.5)


def _palatal_halves(og: OverlayGeometry) -> list[tuple[Point, Point]]:
    """Each level line from the long axis to its palatal end (where the PAB lies)."""
    out = []
    for a, b in og.level_lines.values():
        mid = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0)
        out.append((mid, b))
    return out


def thickness_label(level: int, ms: MeasurementSet | None) -> str:
    v = None if ms is None else ms.values.get(f"pab_thickness_{level}_mm")
    return f"{level}%" if v is None else f"{level}%  {v:.2f} mm"


# --------------------------------------------------------------------------- canvas items


class MeasurementOverlay:
    """The tooth-frame overlay on a ViewBox; call ``update`` after every edit.

    Incremental: the items (four path items, the origin marker and one text item
    per label) are made once and kept; ``update`` changes only what differs from
    the last call - a path whose segments moved, a label whose text or place
    changed - and hides what is absent. An edit therefore creates and removes no
    graphics item, and its cost does not grow with the number of edits or with
    the outline's vertex count (issue 14: rebuilding the text items was two
    thirds of an edit's time).
    """

    Z = 20
    #: label keys in drawing order, with the visibility group each belongs to
    LABELS = (("x palatal", "axes"), ("long axis", "axes"), ("level 25", "thickness"),
              ("level 50", "thickness"), ("level 75", "thickness"), ("level 90", "thickness"),
              ("crest", "crest"))

    def __init__(self, viewbox, to_screen=None):
        """``viewbox``: where the items go (``addItem``): the canvas's image layer or a ViewBox.
        ``to_screen`` maps an image point to the screen, so labels are put on the side facing away
        from the line they belong to as the user sees it (the view may be turned or mirrored)."""
        self._vb = viewbox
        self._to_screen = to_screen or (lambda p: p)
        self._visible = {"axes": True, "thickness": True, "crest": True, "labels": True}

        def path_item(pen: QtGui.QPen, z: float) -> QtWidgets.QGraphicsPathItem:
            it = QtWidgets.QGraphicsPathItem()
            it.setPen(pen)
            it.setZValue(self.Z + z)
            viewbox.addItem(it, ignoreBounds=True)
            return it

        dash = QtCore.Qt.PenStyle.DashLine
        self.axes = path_item(style.cosmetic_pen(style.AXIS_COLOR, 1.4, 0.85, dash), 0)
        self.levels = path_item(style.cosmetic_pen(style.LEVEL_COLOR, 1.0, 0.55,
                                                   QtCore.Qt.PenStyle.DotLine), 0)
        self.chords = path_item(style.cosmetic_pen(style.THICKNESS_COLOR, 3.0), 1)
        self.crest = path_item(style.cosmetic_pen(style.CREST_COLOR, 1.8, 0.95, dash), 1)
        self.origin = pg.ScatterPlotItem(size=11, symbol="+", pxMode=True,
                                         pen=pg.mkPen(style.ORIGIN_COLOR, width=2),
                                         brush=pg.mkBrush(style.ORIGIN_COLOR))
        self.origin.setZValue(self.Z + 2)
        viewbox.addItem(self.origin, ignoreBounds=True)
        self._labels: dict[str, pg.TextItem] = {}
        self._label_state: dict[str, tuple | None] = {}     # key -> (text, pos, anchor) shown, or None
        self._path_state: dict[str, object] = {}            # item name -> the segments drawn
        self._origin_state: Point | None = None
        for key, group in self.LABELS:
            color = {"axes": style.AXIS_COLOR, "thickness": style.THICKNESS_COLOR,
                     "crest": style.CREST_COLOR}[group]
            t = pg.TextItem("", color=style.qcolor(color), anchor=(0, 0), fill=pg.mkBrush(12, 16, 22, 170))
            t.setFont(style.label_font(8.5))
            t.setZValue(self.Z + 3)
            t.setData(0, group)
            t.setVisible(False)
            viewbox.addItem(t, ignoreBounds=True)
            self._labels[key] = t
            self._label_state[key] = None
        self.geometry: OverlayGeometry | None = None

    @property
    def texts(self) -> list[pg.TextItem]:
        """The label items that show something now (hidden groups included)."""
        return [self._labels[k] for k, _ in self.LABELS if self._label_state[k] is not None]

    def items(self) -> list[QtWidgets.QGraphicsItem]:
        """Every graphics item this overlay owns (a fixed set)."""
        return [self.axes, self.levels, self.chords, self.crest, self.origin, *self._labels.values()]

    def _set_path(self, name: str, segments: list) -> None:
        key = tuple(segments)
        if self._path_state.get(name) == key:
            return
        self._path_state[name] = key
        getattr(self, name).setPath(segments_path(segments) if segments else QtGui.QPainterPath())

    def _set_label(self, key: str, text: str | None, pos: Point | None = None,
                   anchor: tuple[float, float] | None = None) -> None:
        t = self._labels[key]
        state = None if text is None else (text, (round(pos[0], 3), round(pos[1], 3)), anchor)
        old = self._label_state[key]
        if state == old:
            return
        self._label_state[key] = state
        if state is None:
            t.setVisible(False)
            return
        if old is None or old[0] != text:
            t.setText(text)
        if old is None or old[2] != anchor:
            t.setAnchor(anchor)
        if old is None or old[1] != state[1]:
            t.setPos(*pos)
        if old is None:
            self._apply_visibility()

    def clear(self) -> None:
        """Show nothing (the items stay, hidden, for the next ``update``)."""
        for name in ("axes", "levels", "chords", "crest"):
            self._set_path(name, [])
        if self._origin_state is not None:
            self.origin.setData([])
            self._origin_state = None
        for key, _ in self.LABELS:
            self._set_label(key, None)
        self.geometry = None

    def update(self, ann: Annotation | None, ms: MeasurementSet | None) -> None:
        og = None if ann is None else overlay_geometry(ann)
        if og is None:
            self.clear()
            return
        self.geometry = og
        self._set_path("axes", [og.axis_ends, og.perpendicular_ends])
        if self._origin_state != og.origin:
            self.origin.setData([og.origin[0]], [og.origin[1]])
            self._origin_state = og.origin
        self._set_path("levels", _palatal_halves(og))
        self._set_path("chords", [s for segs in og.thickness_segments.values() for s in segs])
        self._set_path("crest", [og.crest_line] if og.crest_line is not None else [])
        o = og.origin
        pal_end = og.perpendicular_ends[1]
        # beyond the end of the x axis, on the side it slopes to (below it if it runs down) and
        # a few pixels clear of the line: the CEJ palatal label sits beside the CEJ, nearer the
        # origin, and would otherwise touch it at the usual zoom
        sp, so = self._to_screen(pal_end), self._to_screen(o)
        self._set_label("x palatal", "x palatal", pal_end,
                        (0.0 if sp[0] >= so[0] else 1.0, -0.3 if sp[1] > so[1] else 1.3))
        crown_end = og.axis_ends[0]
        self._set_label("long axis", "long axis", crown_end, self._away(crown_end, o))
        for level in (25, 50, 75, 90):
            line = og.level_lines.get(level)
            if line is None:
                self._set_label(f"level {level}", None)
                continue
            a, b = line
            self._set_label(f"level {level}", thickness_label(level, ms), b, self._away(b, a))
        if og.crest_line is not None:
            a, b = og.crest_line
            v = None if ms is None else ms.values.get("pab_crest_cej_mm")
            self._set_label("crest", "crest" if v is None else f"crest  {v:+.2f} mm", a, self._away(a, b))
        else:
            self._set_label("crest", None)

    def _away(self, p: Point, away_from: Point) -> tuple[float, float]:
        return _direction_anchor(self._to_screen(p), self._to_screen(away_from))

    def set_visible(self, which: str, on: bool) -> None:
        if which in self._visible:
            self._visible[which] = bool(on)
            self._apply_visibility()

    def _apply_visibility(self) -> None:
        v = self._visible
        self.axes.setVisible(v["axes"])
        self.origin.setVisible(v["axes"])
        self.levels.setVisible(v["thickness"])
        self.chords.setVisible(v["thickness"])
        self.crest.setVisible(v["crest"])
        for key, group in self.LABELS:
            self._labels[key].setVisible(self._label_state[key] is not None and v["labels"]
                                         and v.get(group, True))


# --------------------------------------------------------------------------- export rendering


def window_to_uint8(pixels: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    lo, hi = float(levels[0]), float(levels[1])
    if hi <= lo:
        hi = lo + 1.0
    out = (np.asarray(pixels, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def annotation_bounds(ann: Annotation, og: OverlayGeometry | None = None) -> tuple[float, float, float, float] | None:
    """(minx, miny, maxx, maxy) in pixels of everything drawn, or None if nothing is."""
    xs: list[float] = []
    ys: list[float] = []
    for g in ann.regions.values():
        g = as_multipolygon(g)
        if not g.is_empty:
            x0, y0, x1, y1 = g.bounds
            xs += [x0, x1]
            ys += [y0, y1]
    for p in ann.landmarks.values():
        if p is not None:
            xs.append(p[0])
            ys.append(p[1])
    if og is not None:
        for a, b in [og.axis_ends, og.perpendicular_ends, *og.level_lines.values()]:
            xs += [a[0], b[0]]
            ys += [a[1], b[1]]
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def render_overlay_image(image: SliceImage, annotation: Annotation,
                         levels: tuple[float, float] | None = None,
                         region_styles: Mapping[str, style.RegionStyle] | None = None,
                         overlays: Mapping[str, bool] | None = None,
                         measurements: MeasurementSet | None = None,
                         max_size: int = 1600, crop: bool = True,
                         margin: float = 0.15) -> QtGui.QImage:
    """The image with regions, landmarks and the measurement frame, as a QImage.

    ``crop`` keeps the annotated structures plus ``margin`` (fraction) around
    them; the long side is scaled to at most ``max_size`` pixels (small images
    are enlarged up to 4x so labels stay legible). Works with a QGuiApplication.
    """
    if QtGui.QGuiApplication.instance() is None:
        raise RuntimeError("render_overlay_image needs a QGuiApplication (fonts and painting)")
    styles = dict(style.REGION_STYLES)
    styles.update(region_styles or {})
    show = {name: True for name in style.OVERLAY_NAMES}
    show.update(overlays or {})
    if levels is None:
        levels = image.value_range()
    og = overlay_geometry(annotation)
    h, w = image.height, image.width
    x0, y0, x1, y1 = 0, 0, w, h
    b = annotation_bounds(annotation, og) if crop else None
    if b is not None:
        pad = margin * max(b[2] - b[0], b[3] - b[1], 20.0)
        x0 = int(max(0, np.floor(b[0] - pad)))
        y0 = int(max(0, np.floor(b[1] - pad)))
        x1 = int(min(w, np.ceil(b[2] + pad) + 1))
        y1 = int(min(h, np.ceil(b[3] + pad) + 1))
    cw, ch = max(1, x1 - x0), max(1, y1 - y0)
    scale = min(4.0, max_size / max(cw, ch))
    dw, dh = max(1, int(round(cw * scale))), max(1, int(round(ch * scale)))
    # shown as the annotation says the slice stands upright (docs/adr/0012): the picture is drawn
    # through ``turn``; labels and marks are placed through it but drawn upright
    deg, mirror = orientation_of(annotation)
    turn = _turn_transform(deg, mirror, dw, dh)
    out_w, out_h = (dh, dw) if deg in (90, 270) else (dw, dh)

    crop8 = np.ascontiguousarray(window_to_uint8(image.pixels[y0:y1, x0:x1], levels))
    src = QtGui.QImage(crop8.data, cw, ch, cw, QtGui.QImage.Format.Format_Grayscale8).copy()
    out = QtGui.QImage(out_w, out_h, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(QtGui.QColor(style.VIEW_BACKGROUND))
    p = QtGui.QPainter(out)
    try:
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0)
        p.setWorldTransform(turn)
        p.drawImage(QtCore.QRectF(0, 0, dw, dh), src)
        # image pixel centre (x, y) -> device ((x - x0 + 0.5) * scale, ...), then turned
        off = (x0 - 0.5, y0 - 0.5)

        def dev(pt: Point) -> QtCore.QPointF:
            return turn.map(QtCore.QPointF((pt[0] - off[0]) * scale, (pt[1] - off[1]) * scale))

        # line widths and labels grow with the picture, so they read the same whatever size the
        # picture is shown at (a report page shows a 1,500 px rendering ~3 inches wide)
        u = max(1.0, max(out_w, out_h) / 640.0)
        font = style.label_font(9.0)
        font.setPixelSize(int(max(12.0, 0.028 * max(out_w, out_h))))   # ~3 % of the picture's side
        placed: list[QtCore.QRectF] = []
        bounds = QtCore.QRectF(0, 0, out_w, out_h)

        names: list[str] = []

        def text(at: QtCore.QPointF, s: str, color: str, left: bool) -> None:
            p.save()
            p.resetTransform()
            placed.append(_halo_text(p, at, s, font, color, left, placed, u, bounds))
            p.restore()
            names.append(s)

        for name, geom in annotation.regions.items():
            st = styles.get(name)
            if st is None or not st.visible:
                continue
            path = multipolygon_path(geom, off, scale)
            p.setBrush(style.qcolor(st.color, st.opacity))
            p.setPen(style.cosmetic_pen(st.color, 2.0 * u))
            p.drawPath(path)
        # pieces left out of the measurements (core.pieces): hatched
        left_out = (measurements.left_out if measurements is not None else {}) or {}
        for name, geom in left_out.items():
            if geom is None or geom.is_empty or not styles.get(name, style.RegionStyle("#000")).visible:
                continue
            p.setBrush(QtGui.QBrush(QtGui.QColor(style.LEFT_OUT_COLOR), QtCore.Qt.BrushStyle.BDiagPattern))
            p.setPen(style.cosmetic_pen(style.LEFT_OUT_COLOR, 1.4 * u, 0.9, QtCore.Qt.PenStyle.DashLine))
            p.drawPath(multipolygon_path(geom, off, scale))
        p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        if og is not None:
            dash = QtCore.Qt.PenStyle.DashLine
            if show["axes"]:
                p.setPen(style.cosmetic_pen(style.AXIS_COLOR, 1.5 * u, 0.85, dash))
                p.drawPath(segments_path([og.axis_ends, og.perpendicular_ends], off, scale))
            if show["thickness"]:
                p.setPen(style.cosmetic_pen(style.LEVEL_COLOR, 1.0 * u, 0.6, QtCore.Qt.PenStyle.DotLine))
                p.drawPath(segments_path(_palatal_halves(og), off, scale))
                p.setPen(style.cosmetic_pen(style.THICKNESS_COLOR, 3.0 * u))
                p.drawPath(segments_path((s for segs in og.thickness_segments.values() for s in segs),
                                         off, scale))
            if show["crest"] and og.crest_line is not None:
                p.setPen(style.cosmetic_pen(style.CREST_COLOR, 2.0 * u, 0.95, dash))
                p.drawPath(segments_path([og.crest_line], off, scale))
            if show["axes"]:
                c = dev(og.origin)
                p.save()
                p.resetTransform()
                p.setPen(style.cosmetic_pen(style.ORIGIN_COLOR, 2.0 * u))
                r = 6.0 * u
                p.drawLine(c + QtCore.QPointF(-r, 0), c + QtCore.QPointF(r, 0))
                p.drawLine(c + QtCore.QPointF(0, -r), c + QtCore.QPointF(0, r))
                p.restore()
        p.resetTransform()
        if show["landmarks"]:
            for name in LANDMARKS:
                pt = annotation.landmarks.get(name)
                if pt is None:
                    continue
                color, _symbol, label = style.LANDMARK_STYLES[name]
                c = dev(pt)
                p.setPen(style.cosmetic_pen("#000000", 1.2 * u))
                p.setBrush(style.qcolor(color))
                p.drawEllipse(c, 5.0 * u, 5.0 * u)
                if show["labels"]:
                    text(c + QtCore.QPointF(8 * u, -8 * u), label, color, left=False)
        if og is not None and show["labels"]:
            if show["thickness"]:
                for level, (a, b) in sorted(og.level_lines.items(), key=lambda kv: dev(kv[1][1]).y()):
                    text(dev(b), thickness_label(level, measurements), style.THICKNESS_COLOR,
                         left=dev(b).x() < dev(a).x())
            if show["crest"] and og.crest_line is not None:
                a, b = og.crest_line
                v = None if measurements is None else measurements.values.get("pab_crest_cej_mm")
                text(dev(a), "crest" if v is None else f"crest  {v:+.2f} mm", style.CREST_COLOR,
                     left=dev(a).x() < dev(b).x())
    finally:
        p.end()
    # where each label went (checked by the tests: inside the picture, none covering another)
    out.setText("dentseg-labels", json.dumps([[n, r.x(), r.y(), r.width(), r.height()]
                                              for n, r in zip(names, placed)]))
    return out


def _turn_transform(deg: int, mirror: bool, w: float, h: float) -> QtGui.QTransform:
    """Device coordinates of a w x h picture -> the picture turned counter-clockwise by ``deg`` and
    then mirrored left-right (QTransform(m11, m12, m21, m22, dx, dy): x' = m11 x + m21 y + dx)."""
    t = {90: QtGui.QTransform(0, -1, 1, 0, 0, w), 180: QtGui.QTransform(-1, 0, 0, -1, w, h),
         270: QtGui.QTransform(0, 1, -1, 0, h, 0)}.get(int(deg) % 360, QtGui.QTransform())
    if mirror:
        out_w = h if int(deg) % 180 == 90 else w
        t = t * QtGui.QTransform(-1, 0, 0, 1, out_w, 0)
    return t


def _halo_text(p: QtGui.QPainter, at: QtCore.QPointF, text: str, font: QtGui.QFont,
               color: str, left: bool, avoid: list[QtCore.QRectF] | None = None,
               u: float = 1.0, inside: QtCore.QRectF | None = None) -> QtCore.QRectF:
    """Text with a dark outline so it reads on bright bone and dark air alike; kept ``inside`` the
    picture and moved down below any rectangle of ``avoid`` it would cover. Returns its rectangle."""
    fm = QtGui.QFontMetricsF(font)
    w = fm.horizontalAdvance(text)
    x = at.x() - w - 4 * u if left else at.x() + 4 * u
    y = at.y() + fm.ascent() / 2 - 1
    if inside is not None:
        x = min(max(x, inside.left() + 2 * u), inside.right() - w - 2 * u)
        y = min(max(y, inside.top() + fm.ascent() + 2 * u), inside.bottom() - fm.descent() - 2 * u)
    rect = QtCore.QRectF(x - 2 * u, y - fm.ascent() - 2 * u, w + 4 * u, fm.height() + 4 * u)
    for _ in range(12):
        hit = [r for r in (avoid or []) if r.intersects(rect)]
        if not hit:
            break
        dy = max(r.bottom() for r in hit) - rect.top() + 1.0
        rect.translate(0.0, dy)
        y += dy
    path = QtGui.QPainterPath()
    path.addText(QtCore.QPointF(x, y), font, text)
    p.save()
    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0, 200), 3.0 * u))
    p.drawPath(path)
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.setBrush(style.qcolor(color))
    p.drawPath(path)
    p.restore()
    return rect

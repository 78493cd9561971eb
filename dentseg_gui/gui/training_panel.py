"""Training dock: pick annotated cases, train or fine-tune LU-Net, watch the curves.

Training runs in a child process (``model.train_process``) watched by a
:class:`workers.TrainWorker` thread; every progress dict from ``model.train.train``
is pushed to the GUI thread as a signal and added to the loss and Dice plots
(pyqtgraph). Cancel reaches the child's loop, which keeps the best checkpoint. The model
is written under ``user_data_dir()/models/`` - never over the bundled
``resources/lunet.pt`` - and :func:`available_models` lists it for prediction.

The chosen cases are staged as annotation copies in
``user_data_dir()/training/<run>/`` that point at the original images by
absolute path, so cases from several folders train together and nothing
beside the user's images is touched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ..core.annotation import Annotation, annotation_path_for, load_annotation, save_annotation
from ..core.errors import AnnotationError, DentsegError
from .workers import TrainWorker

log = logging.getLogger("dentseg.gui.training")

CURVE_COLOURS = {"train_loss": "#2f7fd0", "val_loss": "#c0392b",
                 "val_dice_pab": "#e69500", "val_dice_enamel": "#0fa5bf"}


# --------------------------------------------------------------------------- models


def models_dir() -> Path:
    from ..resources import user_data_dir
    return user_data_dir() / "models"


def available_models() -> list[tuple[str, Path]]:
    """(label, path) of every model prediction can use: the bundled one first, then the
    user's trained models (newest first)."""
    from ..resources import bundled_model_path
    out: list[tuple[str, Path]] = []
    bundled = bundled_model_path()
    if bundled.is_file():
        out.append(("Bundled LU-Net", bundled))
    d = models_dir()
    if d.is_dir():
        mine = sorted(d.glob("*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for p in mine:
            when = datetime.fromtimestamp(p.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
            out.append((f"{p.stem} (trained {when})", p))
    return out


def safe_model_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-.") or "lunet-user"
    return name[:80]


def unique_model_path(name: str) -> Path:
    """``models/<name>.pt``, with -2, -3... when taken; never the bundled file."""
    from ..resources import bundled_model_path
    d = models_dir()
    base = safe_model_name(name)
    cand = d / f"{base}.pt"
    k = 2
    bundled = bundled_model_path().resolve()
    while cand.exists() or cand.resolve() == bundled:
        cand = d / f"{base}-{k}.pt"
        k += 1
    return cand


def is_trainable(ann: Annotation) -> bool:
    """A case can teach the network when it has both regions."""
    return all(not ann.region(n).is_empty for n in ("PAB", "enamel"))


def stage_training_data(image_paths: list[Path], run_dir: Path) -> Path:
    """Write annotation copies for the chosen cases into ``run_dir/data`` (image paths absolute).

    Raises ``AnnotationError`` naming a case that cannot be used.
    """
    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(image_paths):
        img = Path(img).resolve()
        ann = load_annotation(annotation_path_for(img))
        if not is_trainable(ann):
            raise AnnotationError(f"{img.name}: needs both a PAB and an enamel region to be used "
                                  "for training; draw them or untick the case")
        ann.image_path = str(img)
        save_annotation(ann, data / f"{i:03d}_{img.stem}.dentseg.json")
    return data


def make_train_config(**values: Any):
    """``model.train.TrainConfig`` from the values it knows (unknown keys are dropped)."""
    from ..model.train import TrainConfig
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        log.info("TrainConfig has no field(s) %s; ignored", ", ".join(unknown))
    return TrainConfig(**{k: v for k, v in values.items() if k in names})


# --------------------------------------------------------------------------- panel


class TrainingPanel(QWidget):
    """Choose cases, start/cancel, live curves. Emits ``modelTrained(path)`` when done."""

    modelTrained = Signal(str)
    #: a run left a model: {model_path, outcome, cases (describe_training_cases, read at the
    #: start), init (what it started from), config (the TrainConfig's fields)}
    runFinished = Signal(object)
    useModelRequested = Signal(str)
    runningChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.config_overrides: dict[str, Any] = {}   # extra TrainConfig fields (tests, experts)
        self.worker: TrainWorker | None = None
        self.last_model: Path | None = None
        self.last_outcome: str | None = None
        self.history: list[dict] = []
        self.run_info: dict[str, Any] = {}
        self._x = 0

        self.case_list = QListWidget(self)
        self.case_list.setToolTip("Annotated cases (PAB and enamel drawn) that training may use. "
                                  "Model output nobody reviewed is left unticked.")
        self.case_count = QLabel(self)

        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(20)
        self.init_combo = QComboBox(self)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("name of the new model")
        form = QFormLayout()
        form.addRow("Start from", self.init_combo)
        form.addRow("Epochs", self.epochs)
        form.addRow("Save as", self.name_edit)

        self.start_button = QPushButton("Start training", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.use_button = QPushButton("Use for prediction", self)
        self.use_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(
            lambda: self.last_model and self.useModelRequested.emit(str(self.last_model)))
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.use_button)

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.status = QLabel("Tick the cases to learn from, then Start.", self)
        self.status.setWordWrap(True)

        def swatch(key: str, text: str) -> str:
            return f"<span style='color:{CURVE_COLOURS[key]}'>■ {text}</span>"

        self.loss_plot = pg.PlotWidget(self, background="w")
        self.loss_plot.setTitle(f"Loss &nbsp; {swatch('train_loss', 'train')} &nbsp; "
                                f"{swatch('val_loss', 'validation')}", color="#333", size="9pt")
        self.dice_plot = pg.PlotWidget(self, background="w")
        self.dice_plot.setTitle(f"Validation Dice &nbsp; {swatch('val_dice_pab', 'PAB')} &nbsp; "
                                f"{swatch('val_dice_enamel', 'enamel')}", color="#333", size="9pt")
        self.dice_plot.setYRange(0, 1)
        for p in (self.loss_plot, self.dice_plot):
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setMinimumHeight(120)
            p.getPlotItem().setContentsMargins(2, 2, 6, 2)
            p.setMouseEnabled(x=False, y=False)
        self.dice_plot.setLabel("bottom", "epoch")
        self.curves = {
            "train_loss": self.loss_plot.plot([], [], name="train", pen=pg.mkPen(CURVE_COLOURS["train_loss"], width=2)),
            "val_loss": self.loss_plot.plot([], [], name="validation", symbol="o", symbolSize=5,
                                            pen=pg.mkPen(CURVE_COLOURS["val_loss"], width=2)),
            "val_dice_pab": self.dice_plot.plot([], [], name="PAB", symbol="o", symbolSize=5,
                                                pen=pg.mkPen(CURVE_COLOURS["val_dice_pab"], width=2)),
            "val_dice_enamel": self.dice_plot.plot([], [], name="enamel", symbol="o", symbolSize=5,
                                                   pen=pg.mkPen(CURVE_COLOURS["val_dice_enamel"], width=2)),
        }
        self.points: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self.curves}

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(QLabel("<b>Cases</b>", self))
        lay.addWidget(self.case_list, 1)
        lay.addWidget(self.case_count)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.loss_plot, 2)
        lay.addWidget(self.dice_plot, 2)
        self.refresh_models()

    # ------------------------------------------------------------------ inputs
    def refresh_models(self) -> None:
        current = self.init_combo.currentData()
        from ..resources import bundled_model_path
        self.init_combo.clear()
        if bundled_model_path().is_file():
            self.init_combo.addItem("Bundled LU-Net (fine-tune)", "bundled")
        self.init_combo.addItem("Scratch (random weights)", None)
        for label, path in available_models():
            if label != "Bundled LU-Net":
                self.init_combo.addItem(f"Fine-tune {label}", str(path))
        i = self.init_combo.findData(current)
        self.init_combo.setCurrentIndex(max(0, i))

    def set_cases(self, image_paths: list[Path]) -> None:
        """List the cases with a trainable annotation on disk; reviewed ones ticked."""
        from .cases import is_model_only, read_annotation_for_listing
        ticked = {self.case_list.item(i).data(Qt.ItemDataRole.UserRole)
                  for i in range(self.case_list.count())
                  if self.case_list.item(i).checkState() == Qt.CheckState.Checked}
        had_items = self.case_list.count() > 0
        self.case_list.clear()
        for p in image_paths:
            ap = annotation_path_for(p)
            try:     # parsed once for the case list and this panel (cases.py)
                ann = read_annotation_for_listing(ap)
            except (OSError, AnnotationError):
                continue
            if not is_trainable(ann):
                continue
            model_only = is_model_only(ann)
            item = QListWidgetItem(Path(p).name + ("  (model output, unreviewed)" if model_only else ""))
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = (str(p) in ticked) if had_items and str(p) in ticked else not model_only
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.case_list.addItem(item)
        self._update_count()
        self.case_list.itemChanged.connect(self._update_count, Qt.ConnectionType.UniqueConnection)

    def _update_count(self, *args) -> None:
        n = len(self.checked_cases())
        self.case_count.setText(f"{n} of {self.case_list.count()} annotated cases ticked"
                                + ("" if n >= 2 else " – tick at least 2"))

    def checked_cases(self) -> list[Path]:
        return [Path(self.case_list.item(i).data(Qt.ItemDataRole.UserRole))
                for i in range(self.case_list.count())
                if self.case_list.item(i).checkState() == Qt.CheckState.Checked]

    # ------------------------------------------------------------------ run
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def start(self) -> bool:
        """Stage the ticked cases and start training (a child process, watched by a worker thread)."""
        from . import messages
        if self.is_running():
            return False
        cases = self.checked_cases()
        if len(cases) < 2:
            messages.show_warning(self, "Training", "Tick at least two annotated cases "
                                  "(one is kept apart to validate the model).")
            return False
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = self.name_edit.text().strip() or f"lunet-{stamp}"
        out_path = unique_model_path(name)
        from ..resources import user_data_dir
        run_dir = user_data_dir() / "training" / f"{stamp}-{out_path.stem}"
        try:
            data_dir = stage_training_data(cases, run_dir)
            config = make_train_config(epochs=self.epochs.value(), init=self.init_combo.currentData(),
                                       seed=0, **self.config_overrides)
        except DentsegError as exc:
            messages.show_exception(self, exc)
            return False
        except ImportError as exc:
            messages.show_error(self, "Training", f"the training module cannot be loaded ({exc}). "
                                "Check that PyTorch is installed, then restart DentSeg.")
            return False
        out_path.parent.mkdir(parents=True, exist_ok=True)
        from ..model.model_versions import describe_training_cases
        self.run_info = {"cases": describe_training_cases(cases), "init": self.init_combo.currentData(),
                         "init_label": self.init_combo.currentText(),
                         "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}}
        self._reset_curves()
        self.worker = TrainWorker(data_dir, out_path, config, parent=self)
        self.worker.data.connect(self._on_progress)
        self.worker.succeeded.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.finished.connect(self._on_thread_finished)
        self._epochs_total = int(getattr(config, "epochs", self.epochs.value()) or 1)
        self.progress.setRange(0, self._epochs_total)
        self.progress.setValue(0)
        self.status.setText(f"Training on {len(cases)} cases → {out_path.name}…")
        self._set_running(True)
        self.worker.start()
        return True

    def cancel(self) -> None:
        if self.is_running():
            self.worker.cancel()
            self.status.setText("Cancelling… (finishing the current step)")
            self.cancel_button.setEnabled(False)

    def _set_running(self, on: bool) -> None:
        self.start_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)
        self.case_list.setEnabled(not on)
        self.init_combo.setEnabled(not on)
        self.epochs.setEnabled(not on)
        self.runningChanged.emit(on)

    def _reset_curves(self) -> None:
        self.history = []
        self._x = 0
        for k, curve in self.curves.items():
            self.points[k] = ([], [])
            curve.setData([], [])
        self.use_button.setEnabled(False)
        self.last_outcome = None

    def _on_progress(self, d: Any) -> None:
        """One progress dict from ``model.train.train`` (kind 'loading' | 'step' | 'epoch')."""
        if not isinstance(d, dict):
            return
        kind = d.get("kind", "epoch")
        if kind == "loading":
            self.status.setText(f"Preparing case {int(d.get('done', 0)) + 1}/{d.get('total', '?')}: "
                                f"{d.get('case', '')}")
            return
        self.history.append(dict(d))
        epoch = d.get("epoch")
        spe = d.get("steps_per_epoch")
        if kind == "step" and isinstance(d.get("step"), (int, float)) and spe:
            x = float(d["step"]) / float(spe)          # global step -> fractional epochs
            keys = ("train_loss",)
        else:
            x = float(epoch) if isinstance(epoch, (int, float)) else float(len(self.history))
            keys = tuple(self.curves)
        for key in keys:
            v = d.get(key)
            if isinstance(v, (int, float)):
                xs, ys = self.points[key]
                xs.append(x)
                ys.append(float(v))
                self.curves[key].setData(xs, ys)
        if isinstance(d.get("epochs"), int) and d["epochs"] != self.progress.maximum():
            self.progress.setRange(0, d["epochs"])
        if isinstance(epoch, (int, float)):
            done = epoch if kind == "epoch" else max(0, epoch - 1)
            self.progress.setValue(int(min(done, self.progress.maximum())))
        bits = [f"epoch {epoch}/{d.get('epochs', self._epochs_total)}" if epoch is not None else ""]
        for key, label in (("train_loss", "loss"), ("val_loss", "val loss"),
                           ("val_dice_pab", "Dice PAB"), ("val_dice_enamel", "Dice enamel")):
            if isinstance(d.get(key), (int, float)):
                bits.append(f"{label} {d[key]:.3f}")
        if d.get("best"):
            bits.append("saved (best so far)")
        self.status.setText(" · ".join(b for b in bits if b))

    def _on_done(self, result: Any) -> None:
        path = Path(getattr(result, "out_path", None) or self.worker.out_path)
        stop = getattr(result, "stop_reason", "completed")
        self.last_model = path
        self.last_outcome = "ok"
        self.progress.setValue(self.progress.maximum())
        best = getattr(result, "best_metrics", {}) or {}
        dice = best.get("val_dice_pab")
        self.status.setText(f"Saved {path.name} in {path.parent}"
                            + (f" (best epoch {result.best_epoch}, Dice PAB {dice:.3f})"
                               if isinstance(dice, (int, float)) else "")
                            + (" – stopped early, no further improvement" if stop == "early_stopping" else "")
                            + ". Choose it in Model › Choose model, or press “Use for prediction”.")
        self.use_button.setEnabled(path.is_file())
        self.refresh_models()
        self.modelTrained.emit(str(path))
        self.runFinished.emit(dict(self.run_info, model_path=str(path), outcome=stop))

    def _on_failed(self, message: str) -> None:
        from . import messages
        self.last_outcome = "failed"
        self.status.setText("Training failed: " + message)
        messages.show_error(self, "Training failed", message)

    def _on_cancelled(self) -> None:
        self.last_outcome = "cancelled"
        out = self.worker.out_path if self.worker else None
        kept = out is not None and out.is_file()
        self.status.setText("Training cancelled." + (f" The model so far was kept as {out.name}."
                                                     if kept else " No model was saved."))
        if kept:
            self.last_model = out
            self.use_button.setEnabled(True)
            self.refresh_models()
            self.modelTrained.emit(str(out))
            self.runFinished.emit(dict(self.run_info, model_path=str(out), outcome="cancelled"))

    def _on_thread_finished(self) -> None:
        self._set_running(False)

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Stop a running training (window closing)."""
        if self.is_running():
            self.worker.cancel()
            self.worker.wait(wait_ms)


def describe_model(path: Path) -> str:
    """One line about a model file: its card (if written beside it) or its size and date."""
    card = path.with_name(path.stem + ".model-card.json")
    if card.is_file():
        try:
            info = json.loads(card.read_text(encoding="utf-8"))
            bits = [str(info.get(k)) for k in ("name", "created", "epochs") if info.get(k)]
            if bits:
                return " · ".join(bits)
        except (OSError, ValueError):
            pass
    st = path.stat()
    return f"{st.st_size / 1e6:.1f} MB, {datetime.fromtimestamp(st.st_mtime):%Y-%m-%d %H:%M}"

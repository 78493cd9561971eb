"""Train (or fine-tune) LU-Net on a folder of images + ``.dentseg.json`` files.

``train`` is the one training loop: the ``dentseg train`` command and the GUI's
"train on my annotations" both call it. What it guarantees:

* Reproducible: ``config.seed`` fixes the weight initialisation (torch), the
  train/validation split and every augmentation (numpy Generators); data is
  prepared in the calling thread, no worker processes.
* Bounded CPU: ``threads.training_threads`` (the cores available, at most 4, or
  ``--threads``), OpenMP threads waiting passively (docs/adr/0011).
* Finite: a loss or weights that become NaN or infinite stop the run with a clear
  error (the last good checkpoint stays); a model that is not finite is never saved.
* Deployable: at the end the best model is exported to ONNX beside it
  (``export_onnx``), written with its card as one unit; without the ``onnx``
  package the model is kept without it and runs on torch.
* Safe output: the best model so far (by the validation score) is written
  atomically with its model card whenever it improves, so stopping - by
  ``should_stop``, early stopping or a crash - leaves the best checkpoint.
* Live progress: ``progress(dict)`` every few steps and after every epoch.

Loss: cross-entropy + soft Dice (PAB, enamel) for the segmentation; for the
landmarks, KL divergence between each heatmap's spatial softmax and a Gaussian
(sigma 1.5 px) at the true point plus the L1 distance (mm) of its soft-argmax -
the second term gives sub-pixel precision, the first a single sharp peak.
Landmarks missing from an annotation (or outside a crop) are masked out.

Validation score = mean Dice(PAB, enamel) - 0.02 per mm of mean landmark
error: Dice decides, landmark error breaks near-ties (0.5 mm costs 0.01).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import DentsegError, ModelError
from .augment import AUGMENT_PRESETS, AugmentConfig, training_sample
from .dataset import CANONICAL_SPACING_MM, PreparedCase, load_cases
from .finetune import adapt_batchnorm, resolve_settings
from .lunet import ARCHITECTURES, LUNet, build_model, freeze_batchnorm, soft_argmax
from .model_file import print_card_entry
from .quality_fit import fit_quality_thresholds
from .threads import training_threads
from .weights import card_to_update, load_model, read_card, save_model, write_card

#: Epochs of a fresh training run when none are given (the bundled model's recipe); a
#: fine-tuning run's come from ``finetune.finetune_plan`` (by the number of cases).
DEFAULT_EPOCHS = 40
LANDMARK_SIGMA_PX = 1.5


@dataclass
class TrainConfig:
    """One training run. Fields left at None are chosen by ``finetune.resolve_settings``:
    the bundled recipe for fresh training, ``finetune.finetune_plan(n_cases)`` for fine-tuning."""

    epochs: int | None = None            # None: 40 fresh, the plan's when fine-tuning
    batch_size: int = 8
    crop_size: int = 160                 # canonical pixels (32 mm at 0.2 mm/px)
    lr: float = 2e-3                     # fresh training (AdamW, cosine decay, short warm-up)
    finetune_lr: float | None = None     # used instead of ``lr`` when ``init`` is given; None: the plan's
    weight_decay: float = 1e-4
    min_samples_per_epoch: int | None = None   # an epoch is max(cases, this) crops; None: 64 / the plan's
    warmup_steps: int | None = None      # None: 10 % of the steps up to 100 (fresh) / the plan's
    bn: str | None = None                # BatchNorm: 'train' (fresh), 'frozen', 'adapt'; None: chosen
    validation: str | None = None        # 'split' | 'training cases'; None: chosen from the case count
    boundary_weight: float = 0.0         # extra cross-entropy weight on pixels next to a class boundary
    anchor_weight: float | None = None   # L2-SP: pull toward the initial weights when fine-tuning; None: the plan's
    freeze_encoder: bool = False         # fine-tune the decoder, skips and heads only
    fit_quality: bool = True             # fit the plausibility thresholds at the end (model card)
    val_fraction: float = 0.1
    max_val_cases: int = 40
    patience: int = 10                   # epochs without a better validation score
    seed: int = 0
    init: str | None = None              # model file to fine-tune from, or 'bundled'
    arch: str = "LUNet"
    widths: tuple[int, ...] = (16, 32, 64, 128)
    landmark_weight: float = 0.2
    progress_every: int = 10             # steps between step-progress reports
    threads: int | None = None         # None: threads.training_threads() (docs/adr/0011)
    name: str | None = None              # model name for the card (default: output file stem)
    command: str | None = None           # how this run was started, recorded in the card
    augment: AugmentConfig | None = None  # None: the basic preset (fresh) / the plan's


@dataclass
class TrainResult:
    out_path: Path
    best_epoch: int                      # 0 = saved before the first epoch ended (stopped early)
    best_metrics: dict[str, Any]
    epochs_run: int
    stop_reason: str                     # 'completed' | 'early_stopping' | 'cancelled'
    elapsed_s: float
    n_train: int
    n_val: int
    history: list[dict[str, Any]]
    warnings: list[str]


class TrainingError(DentsegError):
    """A training run cannot start (bad folder, bad initial model, nothing to learn from)."""


# --------------------------------------------------------------------------- losses


def gaussian_targets(points: torch.Tensor, present: torch.Tensor, h: int, w: int,
                     sigma: float = LANDMARK_SIGMA_PX) -> torch.Tensor:
    """(B, C, h, w) Gaussian probability maps (each sums to 1) at ``points`` (B, C, 2)."""
    xs = torch.arange(w, dtype=torch.float32)
    ys = torch.arange(h, dtype=torch.float32)
    p = torch.where(present[..., None], points, torch.zeros_like(points))
    gx = torch.exp(-0.5 * ((xs[None, None, :] - p[..., 0:1]) / sigma) ** 2)
    gy = torch.exp(-0.5 * ((ys[None, None, :] - p[..., 1:2]) / sigma) ** 2)
    t = gy[..., :, None] * gx[..., None, :]
    return t / t.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def boundary_mask(labels: torch.Tensor, num_classes: int, radius: int = 2) -> torch.Tensor:
    """(B, h, w) 1.0 where a pixel lies within ``radius`` pixels of a class boundary."""
    onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    k = 2 * radius + 1
    grown = F.max_pool2d(onehot, k, stride=1, padding=radius)
    shrunk = -F.max_pool2d(-onehot, k, stride=1, padding=radius)
    return ((grown - shrunk).sum(dim=1) > 0).float()


def compute_loss(seg: torch.Tensor, heat: torch.Tensor, labels: torch.Tensor, points: torch.Tensor,
                 present: torch.Tensor, mm_per_px: float, landmark_weight: float,
                 boundary_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Total loss and its parts (floats) for one batch.

    ``boundary_weight`` > 0 weights the cross-entropy of pixels within 2 pixels of a class
    boundary by 1 + ``boundary_weight`` (a normalised weighted mean).
    """
    if boundary_weight > 0:
        w = 1.0 + boundary_weight * boundary_mask(labels, seg.shape[1])
        ce = (F.cross_entropy(seg, labels, reduction="none") * w).sum() / w.sum()
    else:
        ce = F.cross_entropy(seg, labels)
    prob = torch.softmax(seg, dim=1)
    onehot = F.one_hot(labels, seg.shape[1]).permute(0, 3, 1, 2).float()
    inter = (prob * onehot).sum(dim=(0, 2, 3))[1:]
    denom = (prob + onehot).sum(dim=(0, 2, 3))[1:]
    dice_loss = 1.0 - ((2 * inter + 1.0) / (denom + 1.0)).mean()
    b, c, h, w = heat.shape
    logp = torch.log_softmax(heat.reshape(b, c, h * w).float(), dim=-1).reshape(b, c, h, w)
    if present.any():
        target = gaussian_targets(points, present, h, w)
        kl = (target * (torch.log(target.clamp_min(1e-12)) - logp)).sum(dim=(-2, -1))
        coords = soft_argmax(logp.exp())
        l1 = (coords - points).abs().sum(dim=-1) * mm_per_px
        m = present.float()
        kl = (kl * m).sum() / m.sum()
        l1 = (l1 * m).sum() / m.sum()
    else:
        kl = l1 = heat.sum() * 0.0
    total = ce + dice_loss + landmark_weight * (kl + l1)
    return total, {"ce": float(ce.detach()), "dice_loss": float(dice_loss.detach()), "kl": float(kl.detach()), "l1_mm": float(l1.detach())}


# --------------------------------------------------------------------------- batches


def make_batch(cases: list[PreparedCase], rng: np.random.Generator, crop_size: int,
               aug: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    imgs, labs, pts = [], [], []
    for case in cases:
        i, l, p = training_sample(case, rng, crop_size, aug)
        imgs.append(i)
        labs.append(l)
        pts.append(p)
    points = torch.from_numpy(np.stack(pts).astype(np.float32))
    present = torch.isfinite(points).all(dim=-1) & (points >= 1).all(dim=-1) & (points <= crop_size - 2).all(dim=-1)
    points = torch.nan_to_num(points, nan=0.0)
    return (torch.from_numpy(np.stack(imgs))[:, None], torch.from_numpy(np.stack(labs).astype(np.int64)),
            points, present)


def _padded_case(case: PreparedCase, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = case.labels.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    img = np.pad(case.image.astype(np.float32), ((0, ph), (0, pw)))
    lab = np.pad(case.labels, ((0, ph), (0, pw)))
    return torch.from_numpy(img)[None, None], torch.from_numpy(lab.astype(np.int64))[None]


@torch.no_grad()
def validate(model: LUNet, cases: list[PreparedCase], canonical_mm: float, landmark_weight: float) -> dict[str, float]:
    """Loss, per-class Dice (mean over cases) and mean landmark error (mm) on whole case windows.

    Leaves the model in eval mode; the training loop sets the mode it needs.
    """
    from .landmarks import decode_heatmaps

    model.eval()
    losses, d_pab, d_en, errs = [], [], [], []
    for case in cases:
        img, lab = _padded_case(case, model.size_multiple)
        seg, heat = model(img)
        present = torch.from_numpy(case.landmark_present)[None]
        pts = torch.from_numpy(np.nan_to_num(case.landmarks))[None]
        loss, _ = compute_loss(seg, heat, lab, pts, present, canonical_mm, landmark_weight)
        losses.append(float(loss))
        pred = seg.argmax(dim=1)[0].numpy()
        truth = lab[0].numpy()
        for cls, out in ((1, d_pab), (2, d_en)):
            a, b = pred == cls, truth == cls
            s = a.sum() + b.sum()
            out.append(1.0 if s == 0 else 2.0 * (a & b).sum() / s)
        found, _ = decode_heatmaps(heat[0].numpy())
        for k in np.flatnonzero(case.landmark_present):
            errs.append(float(np.hypot(*(found[k] - case.landmarks[k]))) * canonical_mm)
    return {"val_loss": float(np.mean(losses)), "val_dice_pab": float(np.mean(d_pab)),
            "val_dice_enamel": float(np.mean(d_en)),
            "val_landmark_mm": float(np.mean(errs)) if errs else None}


def validation_score(m: dict[str, Any]) -> float:
    lm = m.get("val_landmark_mm")
    return (m["val_dice_pab"] + m["val_dice_enamel"]) / 2 - 0.02 * (lm if lm is not None else 0.0)


# --------------------------------------------------------------------------- training


def _initial_model(config: TrainConfig) -> tuple[LUNet, dict[str, Any] | None]:
    if not config.init:
        if config.arch not in ARCHITECTURES:
            raise TrainingError(f"unknown architecture {config.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        args = {"widths": list(config.widths)} if issubclass(ARCHITECTURES[config.arch], LUNet) else {}
        return build_model(config.arch, args), None
    from ..resources import bundled_model_path

    bundled = config.init == "bundled"
    path = bundled_model_path() if bundled else Path(config.init)
    try:
        model, card, sha = load_model(path, require_card=bundled)
    except ModelError as exc:
        raise TrainingError(f"cannot fine-tune from {config.init}: {exc}") from None
    return model, {"path": str(path), "name": card.get("name"), "sha256": sha}


def _split(n: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([config.seed, 1]).permutation(n)
    n_val = 0 if n < 3 else min(config.max_val_cases, max(1, int(round(n * config.val_fraction))))
    return order[n_val:], order[:n_val]


def train(data_dir: str | Path, out_path: str | Path, config: TrainConfig | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train LU-Net on ``data_dir`` and save the best model to ``out_path`` (+ its model card).

    ``progress`` receives dicts with keys ``kind`` ('loading' | 'step' | 'epoch'),
    ``epoch``, ``epochs``, ``step``, ``steps_per_epoch``, ``train_loss``,
    ``val_loss``, ``val_dice_pab``, ``val_dice_enamel``, ``val_landmark_mm``
    (None until the first validation), ``elapsed_s``, ``best`` (True when this
    epoch's model was saved as the new best) and ``best_epoch``.
    ``should_stop`` is checked before every step; when it returns True training
    ends, keeping the best checkpoint (or saving the current model if no
    epoch has finished yet). It is also checked before each case is read: a stop
    then raises ``dataset.LoadingCancelled`` and no model is written. Raises
    ``DentsegError`` subclasses for user errors.
    """
    config = config or TrainConfig()
    out_path = Path(out_path)
    stop = should_stop or (lambda: False)
    report = progress or (lambda d: None)
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(training_threads(config.threads))
    try:
        result = _train(data_dir, out_path, config, report, stop, t0)
    finally:
        torch.set_num_threads(old_threads)
    try:      # the deployable copy: ONNX of the best checkpoint, committed with its card
        from .export_onnx import export_model_file
        export_model_file(out_path)
    except ModelError as exc:
        result.warnings.append(f"no ONNX export ({exc}); the model runs on torch")
    return result


def _train(data_dir, out_path: Path, config: TrainConfig, report, stop, t0: float) -> TrainResult:
    if config.epochs is not None and config.epochs < 1:
        raise TrainingError(f"epochs must be at least 1, got {config.epochs}")
    cases, warnings = load_cases(
        data_dir, window=max(256, int(config.crop_size * 1.6)),
        progress=lambda i, n, name: report({"kind": "loading", "done": i, "total": n, "case": name,
                                            "elapsed_s": time.perf_counter() - t0}),
        should_stop=stop)
    torch.manual_seed(config.seed)
    model, init_info = _initial_model(config)
    canonical_mm = CANONICAL_SPACING_MM
    fine_tune = init_info is not None
    try:
        st = resolve_settings(config, len(cases), fine_tune)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if st.epochs < 1:
        raise TrainingError(f"epochs must be at least 1, got {st.epochs}")
    tr_idx, va_idx = (_split(len(cases), config) if st.validation == "split"
                      else (np.arange(len(cases)), np.arange(0)))
    train_cases = [cases[i] for i in tr_idx]
    val_cases = [cases[i] for i in va_idx] or train_cases
    rng = np.random.default_rng([config.seed, 2])
    if st.bn == "adapt":
        adapt_batchnorm(model, train_cases, np.random.default_rng([config.seed, 3]), config.crop_size, st.augment,
                        make_batch)
    if st.freeze_encoder:
        for part in (*model.encoders, model.bottleneck):
            part.requires_grad_(False)
    anchor = ([(q, q.detach().clone()) for q in model.parameters() if q.requires_grad]
              if fine_tune and st.anchor_weight > 0 else [])
    lr = st.lr
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=lr,
                            weight_decay=config.weight_decay)
    samples = max(len(train_cases), st.min_samples_per_epoch)
    steps_per_epoch = max(1, math.ceil(samples / config.batch_size))
    total_steps = steps_per_epoch * st.epochs
    warmup = st.warmup_steps if st.warmup_steps >= 0 else min(100, total_steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))

    base_card = {
        "name": config.name or out_path.stem,
        "version": "1",
        "description": ("LU-Net (U-Net with convolutional skip paths) segmenting PAB and enamel and "
                        "locating CEJ_labial, CEJ_palatal and apex on a sagittal CBCT slice of an upper incisor"),
        "canonical_spacing_mm": canonical_mm,
        "input_size": {"train_crop_px": config.crop_size, "fully_convolutional": True,
                       "size_multiple": model.size_multiple},
        "normalisation": "robust percentiles 0.5/99.5 of the whole slice -> [0, 1] (SliceImage.normalized)",
        "training": {
            "data_dir": str(data_dir), "data": data_summary(data_dir), "n_cases": len(cases), "n_train": len(train_cases),
            "n_val": len(va_idx), "seed": config.seed, "epochs_planned": st.epochs,
            "fine_tuned_from": init_info, "command": config.command,
            "config": _jsonable(asdict(config)), "settings": st.as_card(),
        },
    }
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_metrics = -math.inf, 0, {}
    saved = False
    step = 0
    stop_reason = "completed"
    epochs_since_best = 0
    epoch = 0

    def save(metrics: dict[str, Any], epoch_no: int) -> None:
        card = dict(base_card)
        card["training"] = dict(base_card["training"], best_epoch=epoch_no, steps_run=step,
                                wall_time_s=round(time.perf_counter() - t0, 1))
        card["validation"] = {k: v for k, v in metrics.items() if k.startswith("val_")}
        card["validation"]["on"] = "validation split" if va_idx.size else "training cases (too few for a split)"
        card["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        save_model(model, out_path, card)

    for epoch in range(1, st.epochs + 1):
        model.train()
        if st.bn != "train":
            freeze_batchnorm(model)
        order = np.concatenate([rng.permutation(len(train_cases))
                                for _ in range(math.ceil(samples / len(train_cases)))])[:samples]
        running, n_run = 0.0, 0
        cancelled = False
        for s in range(steps_per_epoch):
            if stop():
                cancelled = True
                break
            idx = order[s * config.batch_size:(s + 1) * config.batch_size]
            if idx.size == 0:
                break
            img, lab, pts, present = make_batch([train_cases[i] for i in idx], rng, config.crop_size, st.augment)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            seg, heat = model(img)
            loss, parts = compute_loss(seg, heat, lab, pts, present, canonical_mm, config.landmark_weight,
                                       boundary_weight=st.boundary_weight)
            if anchor:   # L2-SP: stay near the model fine-tuning started from
                loss = loss + st.anchor_weight * sum(((q - q0) ** 2).sum() for q, q0 in anchor)
            if not math.isfinite(float(loss.detach())):
                raise TrainingError(_not_finite(f"the loss at step {step + 1} (epoch {epoch})", saved, out_path))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise TrainingError(_not_finite(f"the weights after step {step + 1} (epoch {epoch})",
                                                saved, out_path))
            step += 1
            running += loss.item()
            n_run += 1
            if step % config.progress_every == 0:
                report(_progress("step", epoch, st.epochs, step, steps_per_epoch, running / n_run,
                                 history[-1] if history else {}, t0, False, best_epoch))
        if cancelled:
            stop_reason = "cancelled"
            epoch -= 1
            break
        metrics = validate(model, val_cases, canonical_mm, config.landmark_weight)
        if not math.isfinite(metrics["val_loss"]):
            raise TrainingError(_not_finite(f"the validation loss (epoch {epoch})", saved, out_path))
        metrics["train_loss"] = running / max(1, n_run)
        score = validation_score(metrics)
        improved = score > best_score
        if improved:
            best_score, best_epoch, best_metrics = score, epoch, dict(metrics, epoch=epoch)
            save(metrics, epoch)
            saved = True
            epochs_since_best = 0
        else:
            epochs_since_best += 1
        entry = _progress("epoch", epoch, st.epochs, step, steps_per_epoch, metrics["train_loss"],
                          metrics, t0, improved, best_epoch)
        history.append(entry)
        report(entry)
        if epochs_since_best >= config.patience:
            stop_reason = "early_stopping"
            break
    if not saved:  # stopped before any epoch finished: keep what there is
        metrics = validate(model, val_cases, canonical_mm, config.landmark_weight)
        best_metrics = dict(metrics, epoch=0)
        save(metrics, 0)
    if config.fit_quality and stop_reason != "cancelled":
        # the plausibility check's thresholds follow this model (model.quality_fit)
        best_model, _, _ = load_model(out_path)
        card = card_to_update(out_path, "quality thresholds")
        card["quality_thresholds"] = fit_quality_thresholds(
            best_model, [cases[i] for i in va_idx], train_cases, canonical_mm, seed=config.seed)
        write_card(out_path, card)
    return TrainResult(out_path, best_epoch, best_metrics, epoch, stop_reason,
                       time.perf_counter() - t0, len(train_cases), len(va_idx), history, warnings)


def _not_finite(what: str, saved: bool, out_path: Path) -> str:
    kept = (f"the last good checkpoint {out_path.name} is kept" if saved
            else "no model was written")
    return (f"training stopped: {what} became NaN or infinite ({kept}); check the training "
            "images for extreme values, or lower the learning rate")


def data_summary(data_dir: str | Path) -> dict[str, Any]:
    """What the training folder holds, from the annotations' provenance (phantom seeds and styles)."""
    from .dataset import find_annotated_cases

    gens, styles, seeds = set(), set(), []
    for cf in find_annotated_cases(data_dir):
        try:
            prov = json.loads(cf.annotation_path.read_text(encoding="utf-8")).get("provenance", {})
        except (OSError, ValueError, RecursionError):
            prov = {}
        prov = prov if isinstance(prov, dict) else {}
        gen = prov.get("generator")
        gens.add(f"{gen} v{prov.get('generator_version')}" if gen else "user annotations")
        if isinstance(prov.get("seed"), int):
            seeds.append(prov["seed"])
        if prov.get("style"):
            styles.add(str(prov["style"]))
    out: dict[str, Any] = {"sources": sorted(gens)}
    if seeds:
        out.update(phantom_seeds=[min(seeds), max(seeds)], phantom_styles=sorted(styles))
    return out


def _progress(kind: str, epoch: int, epochs: int, step: int, steps_per_epoch: int, train_loss: float,
              val: dict[str, Any], t0: float, best: bool, best_epoch: int) -> dict[str, Any]:
    return {"kind": kind, "epoch": epoch, "epochs": epochs, "step": step, "steps_per_epoch": steps_per_epoch,
            "train_loss": float(train_loss), "val_loss": val.get("val_loss"),
            "val_dice_pab": val.get("val_dice_pab"), "val_dice_enamel": val.get("val_dice_enamel"),
            "val_landmark_mm": val.get("val_landmark_mm"), "elapsed_s": time.perf_counter() - t0,
            "best": best, "best_epoch": best_epoch}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- command line


def train_cli(data_dir: str | Path, out: str | Path, epochs: int | None = None, init: str | None = None,
              seed: int = 0, augment: str = "basic", threads: int | None = None, lr: float | None = None,
              bn: str | None = None) -> int:
    """``dentseg train DIR --out MODEL [--epochs N] [--init MODEL|bundled] [--seed S] [--augment basic|robust]
    [--lr LR] [--bn train|frozen|adapt] [--threads N]``.

    Left out, epochs, learning rate and BatchNorm handling are chosen (``finetune.resolve_settings``).
    One line per epoch.
    """
    if augment not in AUGMENT_PRESETS:
        raise TrainingError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENT_PRESETS)}")
    command = "dentseg train " + " ".join(shlex.quote(str(a)) for a in (
        [data_dir, "--out", out] + (["--epochs", epochs] if epochs is not None else [])
        + (["--init", init] if init else []) + ["--seed", seed]
        + (["--augment", augment] if augment != "basic" else [])
        + (["--lr", lr] if lr is not None else []) + (["--bn", bn] if bn else [])))
    if lr is not None and not lr > 0:
        raise TrainingError(f"--lr must be a positive number, got {lr}")
    lrs = ({"finetune_lr": lr} if init else {"lr": lr}) if lr is not None else {}
    config = TrainConfig(epochs=epochs, init=init, seed=seed, command=command, bn=bn,
                         augment=AUGMENT_PRESETS[augment] if augment != "basic" else None, threads=threads, **lrs)

    def show(d: dict) -> None:
        if d["kind"] != "epoch":
            return
        lm = d["val_landmark_mm"]
        print(f"epoch {d['epoch']:3d}/{d['epochs']}  train_loss {d['train_loss']:.4f}  "
              f"val_loss {d['val_loss']:.4f}  dice PAB {d['val_dice_pab']:.4f} enamel {d['val_dice_enamel']:.4f}  "
              f"landmarks {'-' if lm is None else f'{lm:.3f} mm'}  {d['elapsed_s']:.0f} s"
              + ("  * saved" if d["best"] else ""), flush=True)

    result = train(data_dir, out, config, progress=show)
    settings = (read_card(out) or {}).get("training", {}).get("settings", {})
    if settings.get("plan"):
        print(f"settings: {settings['plan']}", flush=True)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    m = result.best_metrics
    print(f"saved {result.out_path} (best epoch {result.best_epoch} of {result.epochs_run}, "
          f"{result.stop_reason}; validation Dice PAB {m['val_dice_pab']:.4f} enamel {m['val_dice_enamel']:.4f}) "
          f"in {result.elapsed_s / 60:.1f} min", flush=True)
    return 0


# --------------------------------------------------------------------------- held-out evaluation


def held_out_metrics(model_path: str | Path | None, data_dir: str | Path) -> dict[str, Any]:
    """Run the full ``Segmenter`` (None = bundled model) on every case of ``data_dir`` and score it.

    Dice of the arg-max class maps against the annotation polygons rasterised on
    the original pixels, and the radial error (mm, anisotropic spacing honoured)
    of the final landmarks (after the enamel-end cross-check).
    """
    from ..core.annotation import LANDMARKS, load_annotation
    from ..core.geometry import dice, geometry_to_mask
    from ..core.image_io import load_image
    from .dataset import find_annotated_cases
    from .inference import Segmenter

    seg = Segmenter.load(model_path)
    d_pab, d_en, times = [], [], []
    errs: dict[str, list[float]] = {k: [] for k in LANDMARKS}
    for cf in find_annotated_cases(data_dir):
        ann = load_annotation(cf.annotation_path)
        img = load_image(cf.image_path)
        t = time.perf_counter()
        res = seg.segment(img, spacing=ann.pixel_spacing_mm)
        times.append(time.perf_counter() - t)
        labels = res.labels()
        d_pab.append(dice(labels == 1, geometry_to_mask(ann.region("PAB"), labels.shape)))
        d_en.append(dice(labels == 2, geometry_to_mask(ann.region("enamel"), labels.shape)))
        sr, sc = res.spacing_used
        for k in LANDMARKS:
            if k in ann.landmarks:
                dx = (res.landmarks[k][0] - ann.landmarks[k][0]) * sc
                dy = (res.landmarks[k][1] - ann.landmarks[k][1]) * sr
                errs[k].append(float(math.hypot(dx, dy)))
    all_errs = [e for v in errs.values() for e in v]
    return {
        "data_dir": str(data_dir), "n_cases": len(d_pab),
        "dice_pab_mean": float(np.mean(d_pab)), "dice_pab_min": float(np.min(d_pab)),
        "dice_enamel_mean": float(np.mean(d_en)), "dice_enamel_min": float(np.min(d_en)),
        "landmark_mre_mm": float(np.mean(all_errs)) if all_errs else None,
        "landmark_mre_mm_per_landmark": {k: (float(np.mean(v)) if v else None) for k, v in errs.items()},
        "landmark_p90_mm": float(np.percentile(all_errs, 90)) if all_errs else None,
        "landmark_max_mm": float(np.max(all_errs)) if all_errs else None,
        "segment_median_s": float(np.median(times)),
        "method": "Segmenter.segment on the whole original image; Dice of arg-max classes vs the "
                  "annotation rasterised on the original pixels (pixel-centre rule); landmark radial error in mm",
    }


def record_held_out(model_path: str | Path, data_dir: str | Path, command: str | None = None) -> dict[str, Any]:
    """Compute ``held_out_metrics`` and write them into the model card (the weights are untouched)."""
    card = card_to_update(model_path, "metrics")
    metrics = held_out_metrics(model_path, data_dir)
    metrics["data"] = data_summary(data_dir)
    from .inference import Segmenter, benchmark_latency

    metrics["latency"] = benchmark_latency(Segmenter.load(model_path))
    if command:
        metrics["command"] = command
    card["held_out"] = metrics
    write_card(model_path, card)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """``python -m dentseg_gui.model.train held-out MODEL DATA_DIR``: record held-out metrics in the card."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dentseg_gui.model.train")
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("held-out", help="evaluate MODEL on DATA_DIR and record the metrics in its model card")
    h.add_argument("model", type=Path)
    h.add_argument("data_dir", type=Path)
    args = p.parse_args(argv)
    cmd = f"python -m dentseg_gui.model.train held-out {args.model} {args.data_dir}"
    return print_card_entry(lambda: record_held_out(args.model, args.data_dir, command=cmd))


if __name__ == "__main__":
    sys.exit(main())

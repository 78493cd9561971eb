"""Which settings a training run uses: the fine-tuning plan by number of cases, and BatchNorm adaptation.

``resolve_settings(config, n_cases, fine_tune)`` turns a ``TrainConfig`` - whose fields
left at None mean "choose for me" - into the ``TrainSettings`` the loop runs with. A
fresh training run gets the bundled model's recipe. A fine-tuning run (``--init``) gets
``finetune_plan(n_cases)``: what a clinic with one to a few annotated cases of a new
scanner needs, measured in ``benchmarks/bench_finetune.py`` (docs/model.md, "Fine-tuning"):

* **nothing held out below** ``SPLIT_FROM_CASES`` cases: every annotated case trains, and
  validation (which only picks the epoch to keep) runs on the training cases' windows.
  The older recipe held one of 3-9 cases out: a quarter of a 4-case set unused;
* **BatchNorm statistics kept** as the bundled model learnt them over its wide training
  distribution. Re-estimating them on the new cases (``bn='adapt'``, ``adapt_batchnorm``)
  was measured and rejected: from one case it fits that case's contrast and breaks the
  site's other cases (Dice PAB 0.937 -> 0.86-0.88 on shifted phantoms, PAB height error
  0.47 -> 1.7-2.3 mm); from four it changed nothing;
* **learning rate 3e-4** (1e-3 lost 0.005-0.03 Dice at 1 and 4 cases) and a short schedule
  that grows with the cases: 30 steps of 8 crops for one case (~35 s on this CPU), 48 for
  four (~50-60 s). Twice the steps gained nothing measurable (0.937 / 0.904 -> 0.935 / 0.907);
* **one case: held near the starting weights** (L2-SP, ``anchor_weight`` 3 x the summed
  squared change of every weight): a single case pulls an unanchored model toward itself and
  the site's other cases get worse than with no fine-tune at all. Measured in four one-case
  fine-tunes (v3 on two different site2 cases and on a shifted case, v2 on a shifted case;
  docs/benchmarks.md, "What caps fine-tuning") the anchor was better on Dice and landmarks in
  every one (v3, site2 case 30000: 0.946 / 0.854, PAB height error 0.44 mm -> 0.953 / 0.872,
  0.28 mm). From two cases on it is off: where a site differs a lot from the training data
  (v2 on shifted phantoms) it held back what 2-4 cases teach (landmark error 0.54 -> 0.96 mm
  at 4 cases with anchor 3).

From ``LARGE_SET_CASES`` cases on, fine-tuning keeps the older recipe (learning rate 3e-4,
statistics frozen as they are, 10 % validation split) so that stage 2 of the bundled
model (fine-tuned on 600 phantoms) reproduces.

torch is imported only by ``adapt_batchnorm``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .augment import BASIC_AUGMENT, AugmentConfig

#: below this many cases nothing is held out for validation
SPLIT_FROM_CASES = 10
#: from this many cases on, fine-tuning uses the older large-set recipe
LARGE_SET_CASES = 40
#: fresh training (the bundled model's stage 1)
FRESH_EPOCHS, FRESH_LR, FRESH_MIN_SAMPLES = 40, 2e-3, 64
#: the older fine-tuning recipe (bundled stage 2)
LEGACY_FINETUNE_EPOCHS, LEGACY_FINETUNE_LR = 8, 3e-4


@dataclass(frozen=True)
class FinetunePlan:
    """Fine-tuning settings for a given number of annotated cases."""

    epochs: int
    min_samples_per_epoch: int       # an epoch is max(cases, this) crops
    lr: float
    warmup_steps: int
    bn: str                          # 'adapt' | 'frozen' | 'train'
    validation: str                  # 'training cases' | 'split'
    augment: AugmentConfig
    why: str
    anchor_weight: float = 0.0       # L2-SP toward the initial weights (0.01: no effect; 3: one case)


#: (up to this many cases, epochs, samples per epoch, learning rate, L2-SP anchor weight) - the
#: step budget grows with the cases; measured on this 2-core CPU (docs/benchmarks.md, "fine-tune
#: timing"); the anchor only for a single case (module docstring)
PLAN_TABLE = (
    (1, 5, 48, 3e-4, 3.0),
    (2, 6, 48, 3e-4, 0.0),
    (4, 6, 64, 3e-4, 0.0),
    (9, 6, 80, 3e-4, 0.0),
    (LARGE_SET_CASES - 1, 8, 96, 3e-4, 0.0),
)


def finetune_plan(n_cases: int) -> FinetunePlan:
    """The fine-tuning settings for ``n_cases`` annotated cases (see the module docstring)."""
    n = max(1, int(n_cases))
    if n >= LARGE_SET_CASES:
        return FinetunePlan(LEGACY_FINETUNE_EPOCHS, FRESH_MIN_SAMPLES, LEGACY_FINETUNE_LR, 0, "frozen", "split",
                            BASIC_AUGMENT, f"{n} cases: the large-set recipe (bundled stage 2)")
    for upto, epochs, samples, lr, anchor in PLAN_TABLE:
        if n <= upto:
            break
    validation = "split" if n >= SPLIT_FROM_CASES else "training cases"
    return FinetunePlan(epochs, samples, lr, 0, "frozen", validation, BASIC_AUGMENT,
                        f"{n} case(s): {epochs} epochs of {max(n, samples)} crops, lr {lr:g}, BatchNorm "
                        f"statistics kept, {'10 % held out' if validation == 'split' else 'nothing held out'}"
                        + (f", held near the initial weights (L2-SP {anchor:g})" if anchor else ""),
                        anchor_weight=anchor)


@dataclass(frozen=True)
class TrainSettings:
    """What one run actually uses (recorded in the model card)."""

    epochs: int
    lr: float
    warmup_steps: int                # -1 = 10 % of the steps, at most 100 (fresh training's rule)
    min_samples_per_epoch: int
    bn: str
    validation: str                  # 'split' | 'training cases'
    augment: AugmentConfig
    boundary_weight: float
    freeze_encoder: bool
    anchor_weight: float             # L2-SP weight toward the initial weights (fine-tuning)
    plan: str                        # why (the plan's sentence, or "fresh training")

    def as_card(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["augment"].items()}
        return d


def resolve_settings(config, n_cases: int, fine_tune: bool) -> TrainSettings:
    """Fill every None field of ``config`` (a ``train.TrainConfig``) for this run."""
    if fine_tune:
        plan = finetune_plan(n_cases)
        epochs = config.epochs if config.epochs is not None else plan.epochs
        lr = config.finetune_lr if config.finetune_lr is not None else plan.lr
        samples = (config.min_samples_per_epoch if config.min_samples_per_epoch is not None
                   else plan.min_samples_per_epoch)
        bn = config.bn or plan.bn
        validation = config.validation or plan.validation
        augment = config.augment if config.augment is not None else plan.augment
        warmup = plan.warmup_steps if config.warmup_steps is None else config.warmup_steps
        if config.warmup_steps is None and config.finetune_lr is not None and n_cases >= LARGE_SET_CASES:
            warmup = None                 # a learning rate of one's own on a large set: warm up as fresh
        own = [name for name, v in (("epochs", config.epochs), ("learning rate", config.finetune_lr),
                                    ("BatchNorm", config.bn), ("validation", config.validation),
                                    ("samples per epoch", config.min_samples_per_epoch)) if v is not None]
        why = plan.why + (f"; set by the caller: {', '.join(own)}" if own else "")
    else:
        epochs = config.epochs if config.epochs is not None else FRESH_EPOCHS
        lr = config.lr
        samples = config.min_samples_per_epoch if config.min_samples_per_epoch is not None else FRESH_MIN_SAMPLES
        bn = config.bn or "train"
        validation = config.validation or "split"
        augment = config.augment if config.augment is not None else BASIC_AUGMENT
        warmup = config.warmup_steps      # None: 10 % of the steps, at most 100 (train.py)
        why = "fresh training"
    if bn not in ("adapt", "frozen", "train"):
        raise ValueError(f"bn must be 'adapt', 'frozen' or 'train', got {bn!r}")
    if validation not in ("split", "training cases"):
        raise ValueError(f"validation must be 'split' or 'training cases', got {validation!r}")
    anchor = config.anchor_weight if config.anchor_weight is not None else (plan.anchor_weight if fine_tune else 0.0)
    return TrainSettings(int(epochs), float(lr), -1 if warmup is None else int(warmup), int(samples), bn,
                         validation, augment, float(config.boundary_weight), bool(config.freeze_encoder),
                         float(anchor), why)


def steps_per_epoch(n_train: int, settings: TrainSettings, batch_size: int) -> int:
    return max(1, math.ceil(max(n_train, settings.min_samples_per_epoch) / batch_size))


def adapt_batchnorm(model, cases, rng, crop_size: int, augment: AugmentConfig, make_batch, batches: int = 6,
                    batch_size: int = 8) -> None:
    """Re-estimate every BatchNorm's running mean and variance on augmented crops of ``cases``.

    The statistics become the plain average over ``batches`` batches (momentum None), as
    if the network had been trained on this data, then momentum is restored. No weight
    changes. ``make_batch`` is ``train.make_batch`` (passed in: train imports this module).
    The caller freezes the statistics afterwards (``lunet.freeze_batchnorm``).
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    old = [m.momentum for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for _ in range(batches):
                idx = rng.integers(0, len(cases), batch_size)
                img, _, _, _ = make_batch([cases[i] for i in idx], rng, crop_size, augment)
                model(img)
    finally:
        for m, mom in zip(bns, old):
            m.momentum = mom
        model.train(was_training)


__all__ = ["FinetunePlan", "LARGE_SET_CASES", "SPLIT_FROM_CASES", "TrainSettings", "adapt_batchnorm",
           "finetune_plan", "resolve_settings", "steps_per_epoch"]

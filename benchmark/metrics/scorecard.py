"""The device half of scoring: everything measured on a finished model itself, its per-sample
predictions (and what the model-internal metrics keep of it: features, channel spreads) and the
attacks. What those stored arrays determine is the host half (``rescore.score_record``).

Which TEST rows the MI estimate and the attacks use is fixed per dataset (group-stratified,
seed 0), so every model of a task is measured on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.metrics import mia, mutual_info
from benchmark.dataset import GroupDataset, stratified_rows
from benchmark.inference import Forward, predict_probs, predict_with_features
from benchmark.metrics.fairness_gap import ChannelSpread
from benchmark.metrics.groups import ECE_BINS
from benchmark.metrics.predictions import PARTS, Predictions
from benchmark.metrics.robustness import AttackSettings, describe, robust_evaluation
from benchmark.task import TaskData


@dataclass(frozen=True)
class MetricSettings:
    mi_rows: int = 1000  # TEST rows (group-stratified) for mi_feature_group
    attacks: AttackSettings = field(default_factory=AttackSettings)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MetricSettings:
        attacks = AttackSettings(**config.get("attacks", {}))
        return cls(**{k: v for k, v in config.items() if k != "attacks"}, attacks=attacks)


def mi_rows(dataset: GroupDataset, settings: MetricSettings) -> np.ndarray:
    return stratified_rows(dataset.groups("test").numpy(), settings.mi_rows)


def test_features(model: nn.Module, dataset: GroupDataset, settings: MetricSettings, forward: Forward) -> np.ndarray:
    """Penultimate features (float16) of the MI rows of TEST."""
    rows = torch.from_numpy(mi_rows(dataset, settings))
    _, z = predict_with_features(model, dataset.test.x[rows], **forward.arguments())
    return z.half().numpy()


def collect(model: nn.Module, data: TaskData, settings: MetricSettings, forward: Forward) -> Predictions:
    """Probabilities on RETAIN, FORGET, VAL and TEST; on TEST also the features of the MI rows
    and the channel spreads of every norm layer (one pass)."""
    ds = data.dataset
    kw = forward.arguments()
    blocks = []
    for part, split, rows in (("retain", "train", data.retain_idx), ("forget", "train", data.forget_idx), ("val", "val", None)):
        s = ds.split(split)
        rows = torch.arange(len(s)) if rows is None else rows
        blocks.append((predict_probs(model, s.x[rows], **kw), s.y[rows], s.a[rows], ds.groups(split)[rows], part, rows))
    with ChannelSpread(model) as spread:
        probs, z = predict_with_features(model, ds.test.x, **kw)
    rows = torch.arange(len(ds.test))
    blocks.append((probs, ds.test.y, ds.test.a, ds.groups("test"), "test", rows))
    chosen = mi_rows(ds, settings)
    cat = lambda i: np.concatenate([b[i].numpy() for b in blocks])  # noqa: E731
    return Predictions(
        probs=cat(0).astype(np.float32),
        y=cat(1),
        a=cat(2),
        g=cat(3),
        part=np.concatenate([np.full(len(b[5]), PARTS.index(b[4]), dtype=np.uint8) for b in blocks]),
        index=cat(5),
        num_groups=ds.num_groups,
        num_attributes=ds.num_attributes,
        forget_group=data.forget_group,
        features=z[chosen].half().numpy(),
        feature_groups=ds.groups("test").numpy()[chosen],
        norm_std=spread.stds(),
    )


def attack_rows(dataset: GroupDataset, settings: MetricSettings) -> np.ndarray:
    """The group-stratified TEST rows the attacks run on."""
    attacks = settings.attacks.resolved()
    return stratified_rows(dataset.groups("test").numpy(), attacks.rows, attacks.seed)


def attack(
    model: nn.Module, dataset: GroupDataset, settings: MetricSettings, forward: Forward
) -> tuple[dict[str, float], dict[str, Any]]:
    """(robust metrics, their intervals and counts) on the attack rows of TEST."""
    rows, t = torch.from_numpy(attack_rows(dataset, settings)), dataset.test
    return robust_evaluation(
        model, t.x[rows], t.y[rows], dataset.groups("test")[rows], dataset.num_classes, settings.attacks,
        forward.device, test_rows=len(t),
    )


def measure(model: nn.Module, data: TaskData, settings: MetricSettings, forward: Forward) -> tuple[Predictions, dict[str, float], dict[str, Any]]:
    """(predictions, metrics, details): the predictions, and the catalog's metrics of source
    "attack" with their intervals and counts."""
    predictions = collect(model, data, settings, forward)
    robust, details = attack(model, data.dataset, settings, forward)
    return predictions, robust, details


def record(settings: MetricSettings, dataset: GroupDataset, layers: int) -> dict[str, Any]:
    """Every metric's settings, for the result file."""
    return {
        "mia": mia.SETTINGS,
        "mutual_information": {**mutual_info.SETTINGS, "rows": int(len(mi_rows(dataset, settings))), "split": "test"},
        "attacks": {
            **describe(settings.attacks, dataset.num_classes, len(attack_rows(dataset, settings)), len(dataset.test)),
            "split": "test",
        },
        "ece": {"bins": ECE_BINS, "norm": "l1", "library": "torchmetrics"},
        "fairness_gap": {"layers": layers, "statistic": "std of each input channel over TEST"},
    }


"""What a tuning trial is scored by, on data the leaderboard never reports.

A trial runs on a **tuning view** of its dataset: TRAIN and VAL as they are, and VAL in TEST's
place, so that nothing a trial computes reads a TEST row. Its seeds (>= 1000) are never a
reported run's, and each has its own original and gold model.

Per tuning seed s, with m the trial's model and gold_s the gold (retrain, or retrain+rw for a
method that runs with REWEIGHT) of seed s, both measured on the view:

    gap_s = mean over c in C of |c(m) − c(gold_s)|

C = Avg. Gap's components (``benchmark.report.scoring.AVG_GAP_COMPONENTS``): retain and forget
accuracy, test accuracy and g* accuracy (here on VAL), MIU's MIA forget non-member share
(RETAIN against VAL, as always) and equalized odds (on VAL). The objective, minimised, is the
mean of gap_s over the tuning seeds: the leaderboard's ranking key with VAL for TEST.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from benchmark.dataset import GroupDataset
from benchmark.hashing import stable_hash
from benchmark.metrics.groups import accuracy_metrics, fairness_metrics
from benchmark.metrics.mia import miu_attack
from benchmark.metrics.predictions import Predictions
from benchmark.report.scoring import AVG_GAP_COMPONENTS, seed_scores

OBJECTIVE = "mean over the tuning seeds of Avg. Gap to that seed's gold, with VAL in TEST's place"


def tuning_view(dataset: GroupDataset) -> GroupDataset:
    """``dataset`` with VAL in TEST's place (and a fingerprint of its own, so that nothing
    built on the view is mistaken for something built on the dataset)."""
    return dataclasses.replace(
        dataset, test=dataset.val, fingerprint=stable_hash({"tuning_view": dataset.fingerprint}), _groups={}, _placed={}
    )


def trial_metrics(p: Predictions) -> dict[str, float]:
    """The Avg. Gap components of one model's predictions on the view (nothing else is computed)."""
    found = {**accuracy_metrics(p), **fairness_metrics(p), **miu_attack(p)}
    return {k: found[k] for k in AVG_GAP_COMPONENTS}


def avg_gap(metrics: dict[str, float], gold: dict[str, float]) -> float:
    """Avg. Gap of ``metrics`` to ``gold`` (``scoring.seed_scores``, the leaderboard's own rule)."""
    scored, _ = seed_scores({"metrics": {**metrics, "unlearn_seconds": 1.0}}, {"metrics": {**gold, "unlearn_seconds": 1.0}})
    return scored["avg_gap"]


def objective(gaps: list[float]) -> float:
    return statistics.fmean(gaps)


def describe_protocol(trials: int, seeds: tuple[int, ...], startup: int) -> dict[str, Any]:
    return {
        "trials": trials,
        "tuning_seeds": list(seeds),
        "objective": OBJECTIVE,
        "sampler": f"Optuna TPE, seeded per trial; the first trial the method's own settings, then {startup - 1} random",
    }

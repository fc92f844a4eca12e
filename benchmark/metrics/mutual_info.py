"""mi_feature_group: how much the penultimate features z say about the group g.

This metric is OUR definition (the MIU paper uses mutual information only as a training
term, estimated with MINE; it reports no such metric). One fixed, seeded estimator for
every model, on a fixed group-stratified TEST subset (the same rows for every model of a
dataset): the Barber–Agakov variational bound I(Z; G) ≥ H(G) − E[−log q(G | Z)] with a
cross-fitted linear softmax probe q, in nats:

    Î = H(G) − (1/n) Σ_i −log q̂_{−k(i)}(g_i | z_i),

- H(G): plug-in entropy of the n rows' group frequencies (fixed by the stratified draw);
- q̂_{−k}: Pipeline(StandardScaler, multinomial L2 LogisticRegression) fitted on every
  fold but k of K = 5 stratified folds (float64 features), so each row's q̂(g_i | z_i)
  is out-of-fold;
- C (inverse L2 strength, sklearn's C · Σ loss + ½‖w‖²) is chosen inside each training
  fold by 3-fold stratified CV on the held-out mean log-likelihood, from 9 values
  10^-4 … 10^2 (spacing 10^0.75). Near 10^-4 the probe is the prior (the intercept is
  unpenalised), so features that carry nothing give Î ≈ 0, and many dimensions (d = 512)
  a shrunk probe, not an overfitted one whose bound falls far below 0;
- deterministic: the same inputs and seed give the same floats (one BLAS thread).

Î is NOT clipped at 0: under independence it scatters around −O(G/n) with both signs,
and clipping would bias it upwards and shrink differences |Î_a − Î_b| near 0. It is a
lower bound in expectation (a finite-sample probe is never the Bayes posterior), biased
low by an amount that grows with d / n for a weak signal. On 1,000 rows of planted Gaussian
mixtures (scripts/bench_mi.py, 20 draws each): features shaped like a network's (a group
signal in a 32-dim subspace plus a weak floor, d = 512, true I = 0.62 nats) read 0.55 ± 0.03
(0.60 at d = 16, true 0.61); with isotropic full-rank noise (true 0.64) 0.61 at d = 16, 0.48
at d = 96 and only 0.22 at d = 512, where ~800 rows cannot locate 4 informative coordinates
among 508 equally strong noise ones. Compare values only at the same d and rows (as
mi_calibration_error does).

``se`` = sqrt(Σ_g n_g s_g²) / n, s_g the sd of −log q̂(g_i | z_i) over group g's rows: the
sampling error of the mean log-loss for fixed out-of-fold probes, stratified by group
(group counts fixed, so H(G) has no error). It does not cover the probes' own variation
with the rows they were fitted on, nor the fold assignment (the seed); over fresh draws
of 1,000 rows it is within ~25% of the observed sd (scripts/bench_mi.py).

``mi_calibration_error`` = |Î_unlearned − Î_gold| is computed in benchmark/report/scoring.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

SEED = 0
FOLDS = 5
INNER_FOLDS = 3
CS = tuple(float(c) for c in np.logspace(-4, 2, 9))
TOL, MAX_ITER = 1e-3, 500
SETTINGS = {
    "estimator": "Barber-Agakov bound H(G) - mean out-of-fold -log q(g|z), not clipped",
    "probe": f"StandardScaler + multinomial L2 LogisticRegression (sklearn lbfgs, tol {TOL}, max_iter {MAX_ITER}, float64)",
    "cross_fitting": f"{FOLDS} stratified folds",
    "C": f"chosen per training fold by {INNER_FOLDS}-fold stratified CV log-likelihood from {len(CS)} values 1e-4..1e2",
    "se": "stratified per-row sd of the log-loss / n (probes and folds held fixed)",
    "seed": SEED,
}


@dataclass(frozen=True)
class MIEstimate:
    """Î(Z; G) in nats and its standard error (see the module docstring)."""

    value: float
    se: float


def entropy(groups: np.ndarray, num_groups: int) -> float:
    """Plug-in H(G) = −Σ_g p_g log p_g of the rows' group frequencies, in nats."""
    p = np.bincount(groups, minlength=num_groups) / len(groups)
    return float(-sum(q * math.log(q) for q in p if q > 0))


def _log_likelihoods(estimator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log q(y_i | x_i) for every row."""
    log_q = estimator.predict_log_proba(x)
    return log_q[np.arange(len(y)), np.searchsorted(estimator.classes_, y)]


def _mean_log_likelihood(estimator, x: np.ndarray, y: np.ndarray) -> float:
    """CV score: (1/n) Σ log q(y_i | x_i) (sklearn's neg_log_loss, without its overhead)."""
    return float(_log_likelihoods(estimator, x, y).mean())


def cross_fittable(g: np.ndarray) -> bool:
    """Whether every group present has the FOLDS rows cross-fitting needs."""
    counts = np.bincount(g)
    return bool(counts[counts > 0].min() >= FOLDS)


def _probe(seed: int) -> Pipeline:
    inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed)
    lr = LogisticRegressionCV(Cs=list(CS), cv=inner, scoring=_mean_log_likelihood, l1_ratios=(0.0,), tol=TOL,
                              max_iter=MAX_ITER, n_jobs=1, use_legacy_attributes=False)
    return make_pipeline(StandardScaler(), lr)


def out_of_fold_log_loss(z: np.ndarray, g: np.ndarray, seed: int = SEED) -> np.ndarray:
    """−log q̂_{−k(i)}(g_i | z_i) for every row, each from the probe fitted without its fold.
    (The folds are fitted one after the other: in threads they took longer, lbfgs holding the GIL.)"""
    if not cross_fittable(g):
        raise ValueError(f"every group present needs at least {FOLDS} rows, got counts {np.bincount(g).tolist()}")
    x, loss = np.asarray(z, dtype=np.float64), np.empty(len(g))
    for fit, held in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, g):
        loss[held] = -_log_likelihoods(_probe(seed).fit(x[fit], g[fit]), x[held], g[held])
    return loss


def stratified_se(loss: np.ndarray, g: np.ndarray) -> float:
    """sqrt(Σ_g n_g s_g²) / n: the SE of mean(loss) with the group counts n_g fixed."""
    within = sum(len(rows) * rows.var(ddof=1) for rows in (loss[g == k] for k in np.unique(g)) if len(rows) > 1)
    return float(math.sqrt(within) / len(loss))


def feature_group_mi(z: np.ndarray, g: np.ndarray, num_groups: int, seed: int = SEED) -> MIEstimate:
    """Î(Z; G) = H(G) − mean out-of-fold −log q̂(g_i | z_i), in nats, with its SE (module docstring).
    Undefined (NaN) when a group present has fewer than FOLDS rows: the probe cannot be cross-fitted."""
    g = np.asarray(g, dtype=np.int64)
    if not cross_fittable(g):
        return MIEstimate(math.nan, math.nan)
    with threadpool_limits(1):  # one BLAS thread: reproducible sums, no oversubscription of workers
        loss = out_of_fold_log_loss(z, g, seed)
    return MIEstimate(entropy(g, num_groups) - float(loss.mean()), stratified_se(loss, g))


@functools.lru_cache(maxsize=None)
def original_mi_from(path: Path, num_groups: int) -> MIEstimate:
    """The MI estimate of an original's saved TEST features; computed once per process, as every
    cell of the original's dataset and seed reports it (the file of a key never changes)."""
    with np.load(path) as z:
        return feature_group_mi(z["features"], z["groups"], num_groups)


def original_mi_metrics(estimate: MIEstimate) -> dict[str, float]:
    """The original model's MI estimate under the names a result file gives it."""
    return {"mi_feature_group_original": estimate.value, "mi_feature_group_original_se": estimate.se}

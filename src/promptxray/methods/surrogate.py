"""The sparse linear surrogate context_cite fits to its ablations, and how well it predicts.

ContextCite (Cohen-Wang et al., NeurIPS 2024) reads the model through R random ablations
of the prompt: for each, a 0/1 keep-mask over the units and the target's log-odds,
logit p(target) = log p − log(1 − p). A Lasso fit of log-odds on the masks gives one
weight per unit, the change in log-odds its presence makes. As in the authors' code, the
masks are standardised before the fit (so `alpha` means the same for any number of
units), the target is divided by its number of tokens before the fit and the weights
multiplied back after (so `alpha` means the same for any target length), and the
weights are returned on the 0/1 scale.

How good a surrogate is, is measured on ablations it was not fitted on: K-fold
cross-validation over the R ablations predicts every fold from a fit on the others, and
the Spearman correlation of those out-of-fold predictions with the real log-odds is its
LDS (the same rank agreement the faithfulness check reports, `ablation_sets`). No extra
forward pass: the folds are the same ablations, held out in turn.

This module knows arrays only (no model, no prompt), so a kept set of ablations can be
fitted again for any span of the target at the cost of a few small regressions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..ablation_sets import rank_agreement

FOLDS = 4  # held-out folds for the LDS: each fit sees 3/4 of the ablations
MAX_ITER = 10_000  # coordinate-descent sweeps; a fit that needs more is recorded as such
LOG_ODDS = "log-odds"  # of p(the span's tokens): the paper's target
CONTRAST = "contrast"  # log p(target) − log p(contrast): already unbounded, fitted as it is
# log p is capped just below 0: p = 1 exactly would be infinite odds.
_LOG_P_CAP = -1e-12


def log_odds(log_prob: np.ndarray) -> np.ndarray:
    """logit p from log p: log p − log(−expm1(log p)), exact near p = 0 and p = 1."""
    capped = np.minimum(np.asarray(log_prob, dtype=np.float64), _LOG_P_CAP)
    return capped - np.log(-np.expm1(capped))


def targets(log_probs: np.ndarray, rows: Sequence[int], quantity: str) -> np.ndarray:
    """What is fitted for rows [start, end) of [R, n_rows] per-row log-probs: the log-odds of
    those tokens together, or (a contrast) the sum of the signed rows as they are."""
    start, end = rows
    total = np.asarray(log_probs, dtype=np.float64)[:, start:end].sum(axis=1)
    return log_odds(total) if quantity == LOG_ODDS else total


@dataclass(frozen=True)
class Fit:
    """Weights on the 0/1 keep-masks, the value with every unit removed, and whether the
    solver converged within `MAX_ITER` sweeps."""

    weights: np.ndarray
    intercept: float
    converged: bool


def _model(alpha: float) -> Pipeline:
    return make_pipeline(StandardScaler(), Lasso(alpha=alpha, max_iter=MAX_ITER))


def _quiet_fit(model: Pipeline, keep: np.ndarray, y: np.ndarray) -> None:
    """Fit without the solver's convergence warning reaching a user (it is recorded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(keep, y)


def fit(keep: np.ndarray, y: np.ndarray, alpha: float, tokens: int) -> Fit:
    """Lasso of `y` (one value per ablation) on the keep-masks [R, n], standardised, with
    `y` per token during the fit (`tokens`), weights back on the 0/1 mask scale."""
    model = _model(alpha)
    _quiet_fit(model, np.asarray(keep, dtype=np.float64), np.asarray(y) / tokens)
    scaler, lasso = model[0], model[1]
    weights = lasso.coef_ / scaler.scale_
    intercept = float(lasso.intercept_ - scaler.mean_ @ weights)
    return Fit(weights * tokens, intercept * tokens, bool(lasso.n_iter_ < MAX_ITER))


def held_out(keep: np.ndarray, y: np.ndarray, alpha: float, tokens: int) -> np.ndarray:
    """Every ablation's prediction from a fit on the other folds (`FOLDS` contiguous ones).

    A plain loop over the folds rather than `cross_val_predict`, whose parallel machinery
    costs several times the five small fits themselves (re-targeting is meant to be
    instant)."""
    x = np.asarray(keep, dtype=np.float64)
    per_token = np.asarray(y, dtype=np.float64) / tokens
    predicted = np.empty(len(per_token))
    for train, test in KFold(FOLDS).split(x):
        model = _model(alpha)
        _quiet_fit(model, x[train], per_token[train])
        predicted[test] = model.predict(x[test])
    return predicted * tokens


def held_out_lds(keep: np.ndarray, y: np.ndarray, alpha: float, tokens: int) -> float | None:
    """Spearman of the out-of-fold predictions with `y`: the surrogate's LDS on ablations
    it was not fitted on (None when either side is constant)."""
    return rank_agreement(held_out(keep, y, alpha, tokens).tolist(), list(y))

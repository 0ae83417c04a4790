"""Eq. 6 of the paper (multi-labels from class similarities) and its automatic threshold tau.

Pure numpy. ``score`` is ``D x K x K`` (s_{d,c}(c')), ``valid`` ``D x K`` (class in dataset d's
label space), ``pixels`` ``D x K`` (pixels of ground truth c in d). A row (d, c) is *measured*
when c is in d's space and has pixels in d; every other row is the Null-BCE identity row.

In-space classes: Eq. 6 switches on any c' with s(c') > max(tau, s(c)), another class of d's own
space included (it then trains as a positive). We follow it literally, as the paper's own
Table A-1 does (Mapillary's "phone booth" -> "building", both Mapillary classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_CANDIDATE_TAU = 1.0  # scores are <= 1 and Eq. 6 compares strictly: nothing switches on


@dataclass(frozen=True)
class TauChoice:
    """The threshold used by Eq. 6: ``how`` is "auto" or "given", ``rows`` the measured rows that
    decided an automatic one, ``note`` one sentence for people."""

    tau: float
    rows: int
    how: str
    note: str = ""


def _check(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    score = np.asarray(score, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    pixels = np.asarray(pixels)
    if score.ndim != 3 or score.shape[1] != score.shape[2]:
        raise ValueError(f"score must be D x K x K, got shape {score.shape}")
    if valid.shape != score.shape[:2] or pixels.shape != score.shape[:2]:
        raise ValueError(f"valid {valid.shape} and pixels {pixels.shape} must be D x K = {score.shape[:2]}")
    return score, valid, pixels


def measured_rows(valid: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``D x K`` bool: rows (d, c) that Eq. 6 and auto-tau look at (c in d's space, pixels > 0)."""
    return np.asarray(valid, dtype=bool) & (np.asarray(pixels) > 0)


def switched_on(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray, tau: float) -> np.ndarray:
    """``D x K x K`` bool: s(c') > max(tau, s(c)) on measured rows (never on the diagonal)."""
    score, valid, pixels = _check(score, valid, pixels)
    own = np.diagonal(score, axis1=1, axis2=2)  # D x K: s_{d,c}(c)
    on = score > np.maximum(float(tau), own)[:, :, None]
    on &= measured_rows(valid, pixels)[:, :, None]
    return on


def identity_table(valid: np.ndarray) -> np.ndarray:
    """The Null-BCE table: row (d, c) is 1 at c, 0 on d's classes, -1 (null) elsewhere."""
    valid = np.asarray(valid, dtype=bool)
    d, k = valid.shape
    table = np.repeat(np.where(valid, 0, -1).astype(np.int8)[:, None, :], k, axis=1)
    table[:, np.arange(k), np.arange(k)] = 1
    return table


def multilabel_table(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray, tau: float) -> np.ndarray:
    """Eq. 6: ``D x K x K`` int8 [dataset, ground-truth class, class] of 1 / 0 / -1 (null).

    Measured row (d, c): 1 where c' == c or s(c') > max(tau, s(c)) (strictly); -1 where c' is
    outside d's space and not switched on; 0 otherwise. Every other row is the identity row.
    """
    score, valid, pixels = _check(score, valid, pixels)
    table = identity_table(valid)
    table[switched_on(score, valid, pixels, tau)] = 1
    return table


def auto_tau(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray) -> TauChoice:
    """The paper's automatic tau: the mean top score over measured rows (d, c) whose top class
    lies outside d's label space (a tie with an in-space class counts as in-space).

    Of those rows, the ones above the mean then switch on (one row alone does not). No such
    row: tau = 1.0, so nothing switches on and the table is the Null-BCE table.
    """
    score, valid, pixels = _check(score, valid, pixels)
    rows = measured_rows(valid, pixels)
    inside = np.where(valid[:, None, :], score, -np.inf).max(axis=2)  # D x K
    outside = np.where(valid[:, None, :], -np.inf, score).max(axis=2)
    candidate = rows & (outside > inside)
    n = int(candidate.sum())
    if n == 0:
        note = "no measured class has its top score outside its dataset's label space: tau = 1.0 switches nothing on"
        return TauChoice(NO_CANDIDATE_TAU, 0, "auto", note)
    tau = float(outside[candidate].mean())
    return TauChoice(tau, n, "auto", f"mean top score of the {n} measured classes whose top class lies outside their dataset's label space")


def given_tau(tau: float) -> TauChoice:
    """A threshold chosen by the user."""
    return TauChoice(float(tau), 0, "given", f"given on the command line (--tau {float(tau)!r})")

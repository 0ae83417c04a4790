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
#: Which pairs Eq. 6 may switch on: ``paper`` any (the equation as printed); ``conflict`` only a
#: pair that a label-space conflict can explain (:func:`conflict_possible`).
RULES = ("paper", "conflict")


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


def measured_rows(valid: np.ndarray, pixels: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """``D x K`` bool: rows (d, c) that Eq. 6 and auto-tau look at (c in d's space, at least
    ``min_pixels`` pixels: any pixel for the plain mean; with interior mining, enough support)."""
    return np.asarray(valid, dtype=bool) & (np.asarray(pixels) >= max(1, int(min_pixels)))


def conflict_possible(valid: np.ndarray) -> np.ndarray:
    """``D x K x K`` bool ``[d, c, c']``: some other dataset's label space lacks c and holds c', so
    its annotators can have written c's content as c' (Mapillary's bicyclist -> rider: Cityscapes
    has rider, no bicyclist). A pair no dataset can write that way (pole -> building: every dataset
    labels poles) is no label conflict: a high s(c') there is the model's error (a class it has
    not learnt, scored from its surroundings), not a relation."""
    valid = np.asarray(valid, dtype=bool)
    writes = (~valid[:, :, None] & valid[:, None, :]).astype(np.int32)  # D x K x K: d2 lacks c, holds c'
    return writes.sum(axis=0, keepdims=True) - writes > 0  # over every other dataset


def switched_on(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray, tau: float, min_pixels: int = 1,
                rule: str = "paper") -> np.ndarray:
    """``D x K x K`` bool: s(c') > max(tau, s(c)) on measured rows (never on the diagonal); with
    ``rule="conflict"`` only where :func:`conflict_possible`."""
    score, valid, pixels = _check(score, valid, pixels)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    from uniseg.relations.stats import own_scores

    own = own_scores(score)  # D x K: s_{d,c}(c)
    on = score > np.maximum(float(tau), own)[:, :, None]
    on &= measured_rows(valid, pixels, min_pixels)[:, :, None]
    if rule == "conflict":
        on &= conflict_possible(valid)
    return on


def identity_table(valid: np.ndarray) -> np.ndarray:
    """The Null-BCE table: row (d, c) is 1 at c, 0 on d's classes, -1 (null) elsewhere."""
    valid = np.asarray(valid, dtype=bool)
    d, k = valid.shape
    table = np.repeat(np.where(valid, 0, -1).astype(np.int8)[:, None, :], k, axis=1)
    table[:, np.arange(k), np.arange(k)] = 1
    return table


def multilabel_table(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray, tau: float, min_pixels: int = 1,
                     rule: str = "paper") -> np.ndarray:
    """Eq. 6: ``D x K x K`` int8 [dataset, ground-truth class, class] of 1 / 0 / -1 (null).

    Measured row (d, c): 1 where c' == c or s(c') > max(tau, s(c)) (strictly); -1 where c' is
    outside d's space and not switched on; 0 otherwise. Every other row is the identity row.
    """
    score, valid, pixels = _check(score, valid, pixels)
    table = identity_table(valid)
    table[switched_on(score, valid, pixels, tau, min_pixels, rule)] = 1
    return table


def auto_tau(score: np.ndarray, valid: np.ndarray, pixels: np.ndarray, min_pixels: int = 1) -> TauChoice:
    """The paper's automatic tau: the mean top score over measured rows (d, c) whose top class
    lies outside d's label space (a tie with an in-space class counts as in-space).

    Of those rows, the ones above the mean then switch on (one row alone does not). No such
    row: tau = 1.0, so nothing switches on and the table is the Null-BCE table.
    """
    score, valid, pixels = _check(score, valid, pixels)
    rows = measured_rows(valid, pixels, min_pixels)
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

"""The faithfulness check every result carries, as columns of an evaluation row.

`evaluate` stores, next to a method's PR and KL, the check its result came with
(`record.check`, at the evaluation's k), so the table can set the check's verdict
beside the evaluation's own measure of the same top-k. The columns are declared
here once: the store adds them to a results file written before they existed (its
rows keep them empty until recomputed), and `check_fields` fills them from a check.
"""

from __future__ import annotations

import json
from typing import Any

from ..api import FaithfulnessCheck

# (column, SQL type): every one nullable, so an older file gains them on open.
CHECK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("check_k", "INTEGER"),
    ("check_verdict", "TEXT"),
    ("check_faithful", "INTEGER"),  # 1 / 0, NULL when the check could not be computed
    ("check_deletion_ratio", "REAL"),
    ("check_beats_random", "INTEGER"),
    ("check_random_sets", "INTEGER"),
    ("check_sufficiency_ratio", "REAL"),
    ("check_lds", "REAL"),
    ("check_lds_ablations", "INTEGER"),
    ("check_curve", "TEXT"),  # JSON: p(target) ratio with the top j removed, j = 0..k
    ("check_random_ratios", "TEXT"),  # JSON: the ratio with each random k-set removed
    ("check_forward_passes", "INTEGER"),
    ("check_seconds", "REAL"),
)


def check_fields(check: FaithfulnessCheck | None) -> dict[str, Any]:
    """The row's check columns: all empty for a result without a check."""
    if check is None:
        return {name: None for name, _ in CHECK_COLUMNS}
    return {
        "check_k": check.k,
        "check_verdict": check.verdict,
        "check_faithful": None if check.faithful is None else int(check.faithful),
        "check_deletion_ratio": check.deletion_ratio,
        "check_beats_random": check.beats_random,
        "check_random_sets": len(check.random_ratios) if check.reason is None else None,
        "check_sufficiency_ratio": check.sufficiency_ratio,
        "check_lds": check.lds,
        "check_lds_ablations": check.lds_ablations if check.reason is None else None,
        "check_curve": json.dumps(check.curve) if check.reason is None else None,
        "check_random_ratios": json.dumps(check.random_ratios) if check.reason is None else None,
        "check_forward_passes": check.forward_passes,
        "check_seconds": check.seconds,
    }


def unchecked_fields(k: int, n_units: int) -> dict[str, Any]:
    """The columns of a row whose prompt is too short for a check at the evaluation's k:
    the evaluation masks all k units, while the check needs one unit left to compare."""
    reason = (
        f"k ({k}) is not below the number of units ({n_units}): nothing would be left "
        "to compare with"
    )
    return {**check_fields(None), "check_k": k, "check_verdict": f"not checked: {reason}"}

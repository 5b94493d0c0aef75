"""Statistics over seeds: is a generation really better than generation 0?

Self-distillation gains are the size of the seed-to-seed spread (KD libraries report means
of >= 5 runs), so every comparison here is *paired*: the same seed's generation 0 against
its generation k (or its final student, its ensemble, its compute-matched baseline), and
the mean difference gets a Student-t 95% interval. An interval that contains 0 is "within
noise", whatever its mean says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student-t critical value (scipy ships with jax; numpy alone has no t)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def paired_difference(treated: Sequence[float], control: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of ``treated - control`` over seeds with its ``confidence`` interval and a verdict."""
    diffs = np.asarray(treated, float) - np.asarray(control, float)
    n = len(diffs)
    out = {"n": n, "mean": float(diffs.mean()) if n else math.nan, "diffs": diffs.tolist()}
    if n < 2:
        out.update(lo=math.nan, hi=math.nan, verdict="too few seeds")
        return out
    half = t_quantile(confidence, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
    out.update(lo=out["mean"] - half, hi=out["mean"] + half)
    if out["lo"] > 0:
        out["verdict"] = "better"
    elif out["hi"] < 0:
        out["verdict"] = "worse"
    else:
        out["verdict"] = "within noise"
    return out


def metric_key(records: Sequence[dict]) -> str:
    """Compare on test accuracy when every run has a test split, else on validation."""
    done = [g for r in records for g in r["generations"] if g.get("status") == "done"]
    return "test_acc" if done and all("test_acc" in g for g in done) else "val_acc"


def _gen_value(record: dict, gen: int | None, key: str) -> float | None:
    for g in record["generations"]:
        if g["gen"] == gen and g.get("status") == "done":
            return g.get(key)
    return None


def paired_rows(records: Sequence[dict],
                baselines: Sequence[dict] | Mapping[str, Sequence[dict]] | None = None) -> list[dict]:
    """One row per comparison against generation 0, paired by seed.

    Rows: each generation k >= 1, the final student (chosen on validation), each BAN ensemble
    (and the all-generation ensemble against the final student),
    and for each label-only baseline (``{"compute-matched": runs, "label-smoothing": runs}``,
    one run per record in the same order, None where a seed has none; a plain list means
    compute-matched) the baseline against generation 0 and the final student against it, over
    the seeds that have both.
    """
    key = metric_key(records)
    rows = []
    gen0 = [_gen_value(r, 0, key) for r in records]

    def add(label: str, treated: list, control: list) -> None:
        pairs = [(t, c) for t, c in zip(treated, control) if t is not None and c is not None]
        if pairs:
            rows.append({"comparison": label, "metric": key,
                         **paired_difference([t for t, _ in pairs], [c for _, c in pairs])})

    max_gen = max((g["gen"] for r in records for g in r["generations"]), default=0)
    for gen in range(1, max_gen + 1):
        add(f"gen {gen} - gen 0", [_gen_value(r, gen, key) for r in records], gen0)
    finals = [_gen_value(r, r.get("final_generation"), key) for r in records]
    add("final student - gen 0", finals, gen0)
    labels = sorted({label for r in records for label in (r.get("ensembles") or {})})
    for label in labels:
        ens = [(r.get("ensembles") or {}).get(label, {}).get(key) for r in records]
        add(f"ensemble {label} - gen 0", ens, gen0)
    if "all" in labels:  # what the ensemble adds over the one model that ships
        add("ensemble all - final student", [(r.get("ensembles") or {}).get("all", {}).get(key) for r in records],
            finals)
    if baselines and not isinstance(baselines, Mapping):
        baselines = {"compute-matched": baselines}
    for name, runs in (baselines or {}).items():
        base = [None if b is None else _gen_value(b, 0, key) for b in runs]  # None: no baseline for that seed
        add(f"{name} gen 0 - gen 0", base, gen0)
        add(f"final student - {name}", finals, base)
    return rows


def format_paired(rows: Sequence[dict], scale: float = 100.0) -> str:
    """A fixed-width table of paired differences in accuracy points."""
    if not rows:
        return "(no paired comparisons: generation 0 is missing)"
    what = "test" if rows[0]["metric"] == "test_acc" else "val"
    lines = [f"{'paired Δ ' + what + ' accuracy (points)':<34} {'seeds':>5} {'mean':>7} {'95% interval':>17}  verdict"]
    for row in rows:
        interval = ("-" if math.isnan(row["lo"]) else f"[{row['lo'] * scale:+.2f}, {row['hi'] * scale:+.2f}]")
        lines.append(f"{row['comparison']:<34} {row['n']:>5} {row['mean'] * scale:>+7.2f} {interval:>17}  "
                     f"{row['verdict']}")
    return "\n".join(lines)


def lineage_epochs(record: dict) -> int:
    """Epochs the whole lineage trained (what a compute-matched generation 0 gets)."""
    return sum(len(g.get("epochs", [])) for g in record["generations"] if g.get("status") == "done")

"""Re-evaluate a finished run from its checkpoints: every generation and BAN ensembles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_jax.data.types import Dataset
from rnn_jax.distill.step import make_forward
from rnn_jax.lineage.inference import ensemble_accuracy, logits_metrics, predict_logits
from rnn_jax.lineage.record import finished_generations
from rnn_jax.lineage.weights import load_generation_weights


def evaluate_run(run_dir: Path, record: dict, dataset: Dataset, split: str = "test",
                 batch_size: int = 512) -> dict:
    """Accuracy/loss per generation, and of ensembles 0..k for every k, on one split.

    Restores each generation's best checkpoint (nothing is read from cached logits), so it
    also proves the checkpoints are intact.
    """
    splits = dataset.splits()
    if split not in splits:
        split = "val"
    data = splits[split]
    logits_by_gen: dict[int, np.ndarray] = {}
    rows = []
    forward = None
    for entry in finished_generations(record):
        gen = entry["gen"]
        fns, params, batch_stats = load_generation_weights(run_dir, record, gen, dataset.image_shape,
                                                           dataset.num_classes)
        forward = forward or make_forward(fns)
        transform = dataset.clean_train_images if split == "train" else None
        logits = predict_logits(forward, params, batch_stats, data.images, batch_size, transform)
        logits_by_gen[gen] = logits
        acc, loss = logits_metrics(logits, data.labels)
        rows.append({"name": f"gen {gen}", "members": [gen], "accuracy": acc, "loss": loss,
                     "recorded": entry.get(f"{split}_acc")})
    gens = sorted(logits_by_gen)
    for k in range(1, len(gens)):
        for start in (0, 1):
            members = [g for g in gens[: k + 1] if g >= start]
            if len(members) < 2 or (start == 1 and 0 not in gens):
                continue
            acc = ensemble_accuracy([logits_by_gen[g] for g in members], data.labels)
            rows.append({"name": f"ensemble {members[0]}..{members[-1]}", "members": members, "accuracy": acc,
                         "loss": None, "recorded": None})
    return {"split": split, "n": len(data), "rows": rows}


def format_evaluation(result: dict) -> str:
    header = f"{'model':<16} {'members':<14} {result['split'] + ' acc':>10} {'loss':>8} {'recorded':>9}"
    lines = [f"{result['split']} split: {result['n']} images", header, "-" * len(header)]
    best = max(result["rows"], key=lambda r: r["accuracy"]) if result["rows"] else None
    for row in result["rows"]:
        loss = "-" if row["loss"] is None else f"{row['loss']:.4f}"
        rec = "-" if row["recorded"] is None else f"{row['recorded']:.4f}"
        mark = "  <- best" if row is best else ""
        members = ",".join(map(str, row["members"]))
        lines.append(f"{row['name']:<16} {members:<14} {row['accuracy']:>10.4f} {loss:>8} {rec:>9}{mark}")
    return "\n".join(lines)

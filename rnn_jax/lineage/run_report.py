"""The per-run report: report.json, report.md and confusion-matrix PNGs, from stored logits.

Every finished generation keeps ``gen_<k>/{train,val,test}_logits.npy`` (its best weights'
logits), so a report costs no forward pass over the data. The labels come from the Dataset
when the caller has it (end of a run, tools/evaluate.py) and are then kept in
``labels/<split>.npy`` so later reports (tools/compare.py) need no data at all. The only model
work is one XLA cost analysis of a freshly created model for GFLOPs per image.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rnn_jax.calibration import expected_calibration_error
from rnn_jax.config import RunConfig
from rnn_jax.data.types import Dataset
from rnn_jax.distill.ensemble import ensemble_probabilities
from rnn_jax.errors import DataError
from rnn_jax.lineage.metrics import (
    GAP_THRESHOLDS,
    SEVERE,
    UNDERFIT,
    UNDERFIT_BELOW,
    classification_report,
    fit_summary,
)
from rnn_jax.lineage.record import finished_generations, read_lineage, write_json_atomic
from rnn_jax.softmax import softmax

FINAL_RULES = {"val_loss": "lowest validation cross-entropy, ties: higher validation accuracy",
               "val_acc": "best validation accuracy, ties: lower validation loss"}
REPORT_FILE = "report.json"
REPORT_MD = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
CONFUSION_ENSEMBLE_PNG = "confusion_matrix_ensemble.png"
LABELS_DIR = "labels"
SPLITS = ("train", "val", "test")
REPORT_VERSION = 1


def split_labels(record: dict, dataset: Dataset) -> dict[str, np.ndarray]:
    """Labels in the order the stored logits use (train: the same --max-train subset as training)."""
    config = RunConfig.from_dict(record["config"])
    out = {"train": dataset.train.take(config.train.max_train, seed=config.seed).labels}
    out.update({k: v.labels for k, v in dataset.splits().items() if k != "train"})
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def store_labels(run_dir: Path, labels: dict[str, np.ndarray]) -> None:
    folder = Path(run_dir) / LABELS_DIR
    folder.mkdir(exist_ok=True)
    for split, values in labels.items():
        np.save(folder / f"{split}.npy", np.asarray(values, np.int32))


def stored_labels(run_dir: Path) -> dict[str, np.ndarray]:
    folder = Path(run_dir) / LABELS_DIR
    return {s: np.load(folder / f"{s}.npy").astype(np.int64) for s in SPLITS if (folder / f"{s}.npy").is_file()}


def run_labels(run_dir: Path, record: dict, dataset: Dataset | None = None) -> dict[str, np.ndarray]:
    """Labels per split: from ``dataset``, else stored ones, else the data rebuilt from lineage.json."""
    if dataset is None:
        labels = stored_labels(run_dir)
        if labels:
            return labels
        spec = record.get("data_spec")
        if not spec:
            raise DataError(f"{run_dir} stores no labels and does not record how its data was loaded")
        from rnn_jax.data.registry import DataSpec, load_dataset

        dataset = load_dataset(DataSpec(**spec), progress=False)
    return split_labels(record, dataset)


def model_cost(record: dict) -> dict:
    """Label, size, parameters and forward GFLOPs per image of the run's architecture (fresh weights)."""
    from rnn_jax.models.registry import count_params, create_model, gflops_per_image

    spec = RunConfig.from_dict(record["config"]).model
    shape = tuple(record["data"]["image_shape"])
    model = create_model(spec, shape, len(record["data"]["class_names"]))
    return {"label": spec.label, "name": spec.name, "size": spec.size, "params": count_params(model),
            "gflops_per_image": gflops_per_image(model, shape), "input_shape": list(shape)}


def _load_logits(run_dir: Path, gens: list[int], split: str) -> list[np.ndarray] | None:
    paths = [Path(run_dir) / f"gen_{g}" / f"{split}_logits.npy" for g in gens]
    return [np.load(p) for p in paths] if all(p.is_file() for p in paths) else None


def _model_entry(run_dir: Path, name: str, kind: str, members: list[int], labels: dict[str, np.ndarray],
                 class_names: list[str]) -> dict:
    """Metrics of one generation or ensemble on every split whose logits and labels line up."""
    entry: dict = {"name": name, "kind": kind, "members": members, "splits": {}}
    for split, y in labels.items():
        logits = _load_logits(run_dir, members, split)
        if logits is None or any(len(x) != len(y) for x in logits):
            continue
        probs = softmax(logits[0]) if len(logits) == 1 else ensemble_probabilities(logits)
        metrics = classification_report(y, probs.argmax(axis=1), class_names)
        metrics["ece"] = expected_calibration_error(probs, y)  # self-distillation's most reliable gain
        if split == "train":  # the train split only feeds the gap; per-class rows would be noise here
            metrics = {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "ece")}
        entry["splits"][split] = metrics
    if "train" in entry["splits"] and "val" in entry["splits"]:
        entry["fit"] = fit_summary(entry["splits"]["train"]["accuracy"], entry["splits"]["val"]["accuracy"])
    return entry


def threshold_text() -> str:
    """The verdict thresholds in words (printed under every table that shows a verdict)."""
    parts, lower = [], None
    for upper, verdict in GAP_THRESHOLDS:
        span = f"< {upper * 100:g}" if lower is None else f"{lower * 100:g}-{upper * 100:g}"
        parts.append(f"{span} points {verdict}")
        lower = upper
    parts.append(f">= {lower * 100:g} {SEVERE}")
    return ("gap = clean-train accuracy - validation accuracy: " + "; ".join(parts)
            + f" ({UNDERFIT} instead of {GAP_THRESHOLDS[0][1]} when train accuracy < {UNDERFIT_BELOW * 100:g}%)")


def lineage_stamp(record: dict) -> list:
    """What a report depends on in lineage.json; a report whose stamp differs is stale."""
    gens = [[g["gen"], g.get("status"), g.get("best_epoch"), g.get("val_acc")] for g in record["generations"]]
    ensembles = sorted([k, list(v.get("members", []))] for k, v in (record.get("ensembles") or {}).items())
    return [gens, record.get("final_generation"), ensembles]


def report_is_current(report: dict | None, record: dict) -> bool:
    return (report is not None and report.get("format_version") == REPORT_VERSION
            and report.get("lineage_stamp") == json.loads(json.dumps(lineage_stamp(record))))


def build_report(run_dir: Path, record: dict, labels: dict[str, np.ndarray], cost: dict) -> dict:
    """The report as a JSON-ready dict: per generation and per BAN ensemble, every split."""
    run_dir = Path(run_dir)
    class_names = list(record["data"]["class_names"])
    done = finished_generations(record)
    models = []
    for g in done:
        entry = _model_entry(run_dir, f"gen {g['gen']}", "generation", [g["gen"]], labels, class_names)
        entry.update(gen=g["gen"], best_epoch=g.get("best_epoch"), time_s=g.get("time_s"))
        models.append(entry)
    for label, ensemble in (record.get("ensembles") or {}).items():
        models.append(_model_entry(run_dir, f"ensemble {label}", "ensemble", list(ensemble["members"]), labels,
                                   class_names))
    headline = "test" if "test" in labels else "val"
    return {
        "format_version": REPORT_VERSION,
        "run": record.get("name", run_dir.name),
        "run_dir": str(run_dir),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": cost,
        "data": {"name": record["data"].get("name"), "class_names": class_names,
                 "sizes": record["data"].get("sizes", {})},
        "seed": record["config"].get("seed"),
        "headline_split": headline,
        "final_generation": record.get("final_generation"),
        "final_by": RunConfig.from_dict(record["config"]).final_by,
        "generations_finished": len(done),
        "time_s": float(sum(g.get("time_s") or 0.0 for g in record["generations"])),
        "stop_reason": record.get("stop_reason"),
        "fit_thresholds": {"text": threshold_text(),
                           "below": {verdict: upper for upper, verdict in GAP_THRESHOLDS}, "otherwise": SEVERE,
                           "underfit_train_acc_below": UNDERFIT_BELOW},
        "models": models,
        "lineage_stamp": lineage_stamp(record),
    }


def final_entry(report: dict) -> dict | None:
    """The final student's entry (the generation the run chose on validation)."""
    return next((m for m in report["models"] if m["kind"] == "generation" and m.get("gen") == report["final_generation"]),
                None)


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def _split_metric(entry: dict, split: str, key: str):
    return entry["splits"].get(split, {}).get(key)


def models_table(report: dict, style: str = "text") -> str:
    """Accuracy (%), macro-F1 (%), gap and verdict of every generation and ensemble."""
    from rnn_jax.lineage.report import format_table

    has_test = any("test" in m["splits"] for m in report["models"])
    header = ["model", "members", "train acc", "val acc", "val F1", "val ECE"] + (
        ["test acc", "test F1"] if has_test else []) + ["gap", "fit", "time (s)"]
    rows = []
    for m in report["models"]:
        fit = m.get("fit")
        mark = " *" if m["kind"] == "generation" and m.get("gen") == report["final_generation"] else ""
        rows.append([m["name"] + mark, ",".join(map(str, m["members"])), _pct(_split_metric(m, "train", "accuracy")),
                     _pct(_split_metric(m, "val", "accuracy")), _pct(_split_metric(m, "val", "macro_f1")),
                     _ece(_split_metric(m, "val", "ece")),
                     *([_pct(_split_metric(m, "test", "accuracy")), _pct(_split_metric(m, "test", "macro_f1"))]
                       if has_test else []),
                     "-" if fit is None else f"{fit['gap'] * 100:+.1f}", "-" if fit is None else fit["verdict"],
                     "-" if m.get("time_s") is None else f"{m['time_s']:.0f}"])
    return format_table(header, rows, style)


def _ece(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def per_class_table(entry: dict, split: str, style: str = "text") -> str:
    from rnn_jax.lineage.report import format_table

    rows = [[c["class"], _pct(c["precision"]), _pct(c["recall"]), _pct(c["f1"]), c["support"]]
            for c in entry["splits"][split]["per_class"]]
    return format_table(["class", "precision", "recall", "F1", "support"], rows, style)


def report_markdown(report: dict) -> str:
    """report.md: what a person reads first (the numbers are also in report.json)."""
    model, split = report["model"], report["headline_split"]
    sizes = ", ".join(f"{v} {k}" for k, v in report["data"]["sizes"].items())
    lines = [
        f"# Run report: {report['run']}", "",
        f"- model: **{model['label']}**, {model['params']:,} parameters, {model['gflops_per_image']:.4f} GFLOPs "
        f"per image (input {'x'.join(map(str, model['input_shape']))})",
        f"- data: {report['data']['name']}, {len(report['data']['class_names'])} classes ({sizes})",
        f"- training time: {report['time_s']:.0f} s for {report['generations_finished']} generation(s); "
        f"stop: {report['stop_reason']}",
        f"- final student ({FINAL_RULES[report.get('final_by', 'val_acc')]}): "
        f"generation {report['final_generation']} (marked *)", "",
        "## Accuracy and macro-F1 (%)", "", models_table(report, "markdown"), "",
        f"Fit verdict: {report['fit_thresholds']['text']}.", "",
    ]
    final = final_entry(report)
    ensembles = [m for m in report["models"] if m["kind"] == "ensemble" and split in m["splits"]]
    for entry in ([final] if final and split in final["splits"] else []) + ensembles[:1]:
        lines += [f"## Per class: {entry['name']} on {split} (%)", "", per_class_table(entry, split, "markdown"), ""]
    lines += ["## Pictures", "", f"![confusion matrix, final student]({CONFUSION_PNG})", ""]
    if ensembles:
        lines += [f"![confusion matrix, {ensembles[0]['name']}]({CONFUSION_ENSEMBLE_PNG})", ""]
    lines += ["![training curves](loss_curves.png)", "", "![accuracy per generation](accuracy_per_generation.png)", ""]
    return "\n".join(lines)


# The built-in demo set (rnn_jax.data.builtin) and what is known about distillation on it and elsewhere:
# measured, not assumed (docs/distillation.md, "The built-in demo"; the Fashion-MNIST figure is the
# README's Results table, 10 seeds, commits up to a934b5f).
DEMO_DATA = "builtin-gestures"
DEMO_NOTE = ("on this small drawn demo set the students do not beat generation 0 (3 seeds, docs/distillation.md); "
             "where they do: Fashion-MNIST, final student +0.33 points [+0.22, +0.43] over generation 0, 10 seeds")


def students_vs_gen0(report: dict) -> str | None:
    """Each student's accuracy minus generation 0's on the headline split (None without both)."""
    split = report["headline_split"]
    gens = {m["gen"]: m["splits"][split]["accuracy"] for m in report["models"]
            if m["kind"] == "generation" and split in m["splits"]}
    if 0 not in gens or len(gens) < 2:
        return None
    deltas = ", ".join(f"gen {g} {(acc - gens[0]) * 100:+.1f}" for g, acc in sorted(gens.items()) if g > 0)
    chose = report.get("final_generation")
    return (f"students vs generation 0 ({split} acc, points): {deltas}"
            + ("" if chose is None else f"; validation chose gen {chose}"))


def report_summary(report: dict) -> str:
    """The console lines at the end of a run: the final student, then the students against generation 0."""
    final, split = final_entry(report), report["headline_split"]
    if final is None or split not in final["splits"]:
        return f"report: no finished generation with logits in {report['run_dir']}"
    metrics, fit = final["splits"][split], final.get("fit")
    gap = "" if fit is None else f"; gap {fit['gap'] * 100:+.1f} points ({fit['verdict']})"
    lines = [f"report: gen {final['gen']} {split} acc {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
             f"{gap}; {report['model']['params']:,} params, {report['model']['gflops_per_image']:.4f} GFLOPs/img"]
    versus = students_vs_gen0(report)
    if versus is not None:
        lines.append(f"  {versus}")
        if report["data"].get("name") == DEMO_DATA:
            lines.append(f"  {DEMO_NOTE}")
    return "\n".join(lines)


def write_confusion_pngs(run_dir: Path, report: dict) -> list[Path]:
    """confusion_matrix.png (final student) and confusion_matrix_ensemble.png (all generations)."""
    from rnn_jax.lineage.report import write_confusion_png

    split, written = report["headline_split"], []
    final = final_entry(report)
    ensemble = next((m for m in report["models"] if m["kind"] == "ensemble" and split in m["splits"]), None)
    for entry, name in ((final, CONFUSION_PNG), (ensemble, CONFUSION_ENSEMBLE_PNG)):
        if entry is None or split not in entry["splits"]:
            continue
        metrics = entry["splits"][split]
        title = (f"{report['run']}: {report['model']['label']}, {entry['name']}, {split} split\n"
                 f"accuracy {metrics['accuracy'] * 100:.2f}%, macro-F1 {metrics['macro_f1'] * 100:.2f}%, "
                 f"n = {metrics['n']}")
        written.append(write_confusion_png(np.asarray(metrics["confusion"]), report["data"]["class_names"],
                                           Path(run_dir) / name, title))
    return written


def write_run_report(run_dir: str | Path, record: dict | None = None,
                     dataset: Dataset | None = None) -> tuple[dict, list[Path]]:
    """Build and write report.json, report.md and the confusion PNGs; returns (report, files)."""
    run_dir = Path(run_dir)
    record = record if record is not None else read_lineage(run_dir)
    labels = run_labels(run_dir, record, dataset)
    if dataset is not None:
        store_labels(run_dir, labels)
    report = build_report(run_dir, record, labels, model_cost(record))
    files = write_confusion_pngs(run_dir, report)
    report["files"] = [p.name for p in files]
    write_json_atomic(run_dir / REPORT_FILE, report)
    (run_dir / REPORT_MD).write_text(report_markdown(report))
    return report, [run_dir / REPORT_FILE, run_dir / REPORT_MD, *files]


def read_report(run_dir: str | Path) -> dict | None:
    """report.json of a run, or None when it has none (older runs) or it is unreadable."""
    path = Path(run_dir) / REPORT_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None

"""Any HaGRID root -> landmark split files: plan the parts, extract (cached, shared), merge, balance.

What each part becomes (the rules are :mod:`.extract`'s):

- tight hand crops and unannotated photos (the sample's ``crops_train/`` and ``photos_train/``,
  HaGRID's train split) -> ``train``; one person id per picture (the person is unknown);
- annotated photos of every layout (v2: ``train``/``val``/``test`` as given; v1 and the 30k
  mirror: ``ann_train_val`` split by ``user_id`` into train and val with the fixed seed
  ``SPLIT_SEED``, so every training seed validates on the same people; v1's ``ann_test`` ->
  ``test``). Every box is a hand: its label, gesture or ``no_gesture``. Boxes of HaGRIDv2's
  two-handed gestures carry the gesture's label on both hands, and both are kept: the live
  loop classifies each hand on its own, and each hand alone shows its half of the gesture
  (``two_handed_photos`` in ``parts.json`` counts them).

The merged table is held as numpy arrays and string codes (~350 bytes a hand). Training classes are balanced
with the run's seed (each seed draws its own subset of an over-full class such as
``no_gesture``), so the split files live in one folder per seed; the extraction chunks are
shared by every seed, run and machine (content keys). When any training hand comes from
annotated landmarks (which carry no depth), z is zeroed for every hand so that no model
learns from a z it will not get (the export stores ``use_z`` and live follows it).
JAX-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_jax.atomic import save_npy_atomic, write_json_atomic
from rnn_jax.data.cache import default_cache_dir
from rnn_jax.data.hagrid.annotations import (
    NO_GESTURE,
    folder_gesture,
    index_images,
    parse_file_with_digest,
    raw_box_landmarks,
)
from rnn_jax.data.hagrid.extract import (
    RULES_VERSION,
    Chunk,
    Item,
    class_folder_items,
    in_shard,
    load_chunk,
    plan_chunks,
    run_work_list,
)
from rnn_jax.data.hagrid.layout import HagridLayout, resolve_layout
from rnn_jax.data.landmark_files import LandmarkSet, save_landmarks
from rnn_jax.data.splits import split_people
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.hands.features import handedness_code

# Training classes with fewer hands than this share of the median class are repeated up to it
# (the six gestures only the sample's unannotated photos show have ~70 hands against ~1,000 per
# crop class: unrepeated, a model sends every one of them to no_gesture) ...
BALANCE_SHARE = 0.5
# ... and classes with more than CAP_SHARE x the median are cut to it (seeded by the run's seed):
# all 6,948 no_gesture hands sent val hands of three, four, two_up to no_gesture (val 71% -> 88%
# with the cap, same model; docs/hagrid.md). The hands left out are counted in parts.json.
CAP_SHARE = 1.0
SET_RULES_VERSION = 5  # bump when the way the table becomes split files changes (not the extraction)
SPLIT_SEED = 0  # the person split of a train+val pool: fixed, so every seed validates on the same people
VAL_FRACTION = 0.15


@dataclass(frozen=True)
class Part:
    """One part of a root: the split (or pool) it feeds, its rule, and where its pictures are."""

    pool: str  # "train", "val", "test" or "trainval" (split by person after extraction)
    kind: str  # "crops", "photos" or "annotated"
    source: str  # what it is, for the report


def default_extraction_cache() -> Path:
    return default_cache_dir().parent / "hagrid-parts"


def plan_parts(layout: HagridLayout) -> list[Part]:
    """The parts of ``layout`` in the order they are extracted (and merged)."""
    if layout.kind == "folders":
        raise ConfigError(f"{layout.root} holds plain class folders, not HaGRID: the landmark family needs "
                          "HaGRID's annotations or parts; for your own photos use tools/extract_landmarks.py "
                          "and python -m experiments.landmarks (or pass --family image)")
    parts = []
    if layout.crops:
        parts.append(Part("train", "crops", str(layout.crops.relative_to(layout.root))))
    if layout.photos:
        parts.append(Part("train", "photos", str(layout.photos.relative_to(layout.root))))
    parts += [Part(pool, "annotated", f"{pool} annotations") for pool in layout.pools]
    return parts


class AnnotatedReader:
    """Annotated photos of one layout, one gesture file at a time (a 1M-photo set never sits in
    memory as Python objects), with what was skipped counted."""

    def __init__(self, layout: HagridLayout) -> None:
        self.layout = layout
        self.index = index_images(layout.root, layout.annotation_dirs)
        self.counts: Counter = Counter()

    def items(self, pool: str) -> Iterator[list[Item]]:
        """One list of items per gesture file of ``pool``."""
        for _digest, items in self.files(pool):
            yield items

    def files(self, pool: str) -> Iterator[tuple[str, list[Item]]]:
        """(the file's SHA-256, its items) per gesture file of ``pool``; annotation items carry the
        boxes, labels, person, landmarks (lists, None where a box has none) and handedness."""
        base = str(self.layout.root) + os.sep
        for path in self.layout.pools[pool]:
            entries, bad, digest = parse_file_with_digest(path, pool)
            self.counts["malformed_entries"] += bad
            items, missing = [], 0
            for e in entries:
                paths = self.index.get(e.image_id)
                if not paths:
                    missing += 1
                    continue
                picture = next((p for p in paths if folder_gesture(p) == e.gesture), paths[0])
                landmarks = raw_box_landmarks(e)  # checked where they are used: a cached chunk never needs it
                self.counts["boxes"] += len(e.boxes)
                self.counts["two_handed_photos"] += e.united is not None
                hands = [e.leading_hand or "" if label == e.gesture else "" for label in e.labels]
                relative = picture[len(base):] if picture.startswith(base) else os.path.relpath(picture, base)
                items.append(Item(relative, e.gesture, {"boxes": [list(b) for b in e.boxes], "labels": list(e.labels),
                                                        "user": e.user, "landmarks": landmarks, "hands": hands}))
            if entries and not items:
                self.counts["gesture_files_without_images"] += 1  # an archive not downloaded: not "missing"
                continue
            self.counts["missing_on_disk"] += missing
            yield digest, items


def extraction_chunks(layout: HagridLayout, cache: Path, reader: AnnotatedReader | None = None
                      ) -> Iterator[tuple[Part, list[Chunk]]]:
    """Every part's chunks, part by part and gesture file by gesture file (``reader`` counts what
    the annotated parts skipped)."""
    reader = reader or (AnnotatedReader(layout) if layout.pools else None)
    for part in plan_parts(layout):
        if part.kind in ("crops", "photos"):
            folder = layout.crops if part.kind == "crops" else layout.photos
            assert folder is not None
            yield part, plan_chunks(part.kind, layout.root, class_folder_items(folder, layout.root), cache)
        else:
            assert reader is not None
            for digest, items in reader.files(part.pool):
                yield part, plan_chunks("annotated", layout.root, items, cache, annotations=digest)


def extract_layout(layout: HagridLayout, cache: Path, engine, shard: tuple[int, int] | None = None,
                   progress: bool = True) -> tuple[list[tuple[Part, list[Chunk]]], dict]:
    """Extract every chunk of ``layout`` (only shard K of N's with ``shard``) into ``cache``;
    returns the plan and the counts. Without a shard every chunk is on disk on return."""
    cache.mkdir(parents=True, exist_ok=True)
    reader = AnnotatedReader(layout) if layout.pools else None
    plan: list[tuple[Part, list[Chunk]]] = []
    totals: Counter = Counter()
    number = 0
    for part, chunks in extraction_chunks(layout, cache, reader):
        mine = [c for c in chunks if in_shard(number + c.index, shard)]
        number += len(chunks)
        if mine:
            totals.update(run_work_list(mine, layout.root, engine, progress=progress, wait=shard is None,
                                        what=f"{part.kind} ({part.pool})"))
        plan.append((part, [c.done() for c in chunks]))  # items dropped: memory stays one gesture file
    return plan, {**dict(totals), **(dict(reader.counts) if reader else {})}


# --------------------------------------------------------------------------- the table
CATEGORY_FIELDS = ("label", "person", "hand", "how", "pool", "kind")  # few distinct values: int32 codes


@dataclass(frozen=True, eq=False)
class Categories:
    """A string column held as int32 codes into its distinct values. At 1M hands the labels,
    people, sides and routes take 24 MB this way instead of ~200 MB as numpy unicode (which
    stores 4 bytes a character at the longest value's width), and that kept the merge's peak
    RSS over 2 GB. Indexing gives strings back; ``== value`` compares codes."""

    codes: np.ndarray  # [rows] int32
    names: np.ndarray  # [distinct] str

    def __getitem__(self, rows) -> np.ndarray:
        return self.names[self.codes[rows]]

    def __len__(self) -> int:
        return len(self.codes)

    def __eq__(self, value: object) -> np.ndarray:  # type: ignore[override]
        hit = np.flatnonzero(self.names == value)
        return self.codes == hit[0] if len(hit) else np.zeros(len(self.codes), bool)

    def distinct(self, rows: np.ndarray | None = None) -> set[str]:
        """The values that occur (in ``rows``, else in any row)."""
        return set(self.names[np.unique(self.codes if rows is None else self.codes[rows])].tolist())


@dataclass(frozen=True, eq=False)
class Utf8Strings:
    """A column of mostly distinct strings (the pictures' relative paths) held as UTF-8 bytes:
    a quarter of numpy unicode's size; indexing decodes the rows asked for."""

    data: np.ndarray  # [rows] bytes (S)

    def __getitem__(self, rows) -> np.ndarray:
        return np.char.decode(self.data[rows], "utf-8")

    def __len__(self) -> int:
        return len(self.data)


class _Vocabulary:
    """Grows one column's distinct values chunk by chunk and gives each chunk's codes."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def codes(self, values: np.ndarray) -> np.ndarray:
        distinct, inverse = np.unique(values, return_inverse=True)
        mapping = np.asarray([self.index.setdefault(v, len(self.index)) for v in distinct.tolist()], np.int32)
        return mapping[inverse.reshape(-1)] if len(values) else np.zeros(0, np.int32)

    def names(self) -> np.ndarray:
        return np.asarray(list(self.index), dtype=str) if self.index else np.zeros(0, "<U1")


def merge_chunks(plan: list[tuple[Part, list[Chunk]]]) -> dict:
    """Every chunk's rows, in plan order, as one table (+ ``pool`` and ``kind`` per row): numbers
    as arrays, few-valued strings as :class:`Categories`, ``source`` as :class:`Utf8Strings`.
    Each chunk is made compact as it is read, so the peak is about the compact table."""
    pieces, statuses = [], Counter()
    vocabularies = {key: _Vocabulary() for key in CATEGORY_FIELDS}
    for part, chunks in plan:
        for chunk in chunks:
            if not chunk.path.is_file():
                raise DataError(f"extraction chunk {chunk.path.name} is missing: run the extraction again "
                                "(without --shard, or every shard) before merging")
            arrays = load_chunk(chunk)
            for key in list(arrays):
                if key.startswith("n_"):
                    statuses[f"{part.kind}:{key[2:]}"] += int(arrays.pop(key))
            n = len(arrays["label"])
            arrays["pool"] = np.full(n, part.pool)
            arrays["kind"] = np.full(n, part.kind)
            for key in CATEGORY_FIELDS:
                arrays[key] = vocabularies[key].codes(arrays[key])
            arrays["source"] = np.char.encode(arrays["source"], "utf-8") if n else np.zeros(0, "S1")
            pieces.append(arrays)
    if not pieces:
        raise DataError("this HaGRID root has no pictures to extract")
    table: dict = {}
    for key in list(pieces[0]):  # field by field, freeing the pieces: peak memory ~ the table plus one field
        table[key] = np.concatenate([p.pop(key) for p in pieces])
    for key in CATEGORY_FIELDS:
        table[key] = Categories(table[key], vocabularies[key].names())
    table["source"] = Utf8Strings(table["source"])
    table["statuses"] = dict(statuses)
    return table


def split_rows(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Split name -> row indices: given pools as they are, a train+val pool split by person."""
    pools = table["pool"]
    out = {p: np.flatnonzero(pools == p) for p in ("train", "val", "test") if np.any(pools == p)}
    trainval = np.flatnonzero(pools == "trainval")
    if len(trainval):
        people = table["person"][trainval].tolist()
        val_people = set(split_people(people, {"val": VAL_FRACTION} if "val" not in out else {},
                                      SPLIT_SEED, what="people (user_id) in the annotations").get("val", []))
        is_val = np.asarray([p in val_people for p in people], bool)
        out["train"] = np.concatenate([out.get("train", np.zeros(0, int)), trainval[~is_val]])
        if is_val.any():
            out["val"] = np.concatenate([out.get("val", np.zeros(0, int)), trainval[is_val]])
    return out


def balanced(labels: np.ndarray, share: float = BALANCE_SHARE, cap: float = CAP_SHARE,
             seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """Row indices after balancing: classes under ``share`` x the median class size repeated up to
    it, classes over ``cap`` x the median cut to it (seeded; order kept). Repeats see different
    augmentation each epoch. Returns the indices and each changed class's factor."""
    classes, counts = np.unique(labels, return_counts=True)
    median = float(np.median(counts))
    rng = np.random.default_rng(seed)
    keep, factors = [], {}
    for label, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == label)
        if count < share * median:
            factor = int(np.ceil(share * median / count))
            factors[str(label)] = factor
            keep.append(np.tile(members, factor))
        elif count > cap * median:
            chosen = np.sort(rng.choice(members, int(cap * median), replace=False))
            factors[str(label)] = round(len(chosen) / count, 3)
            keep.append(chosen)
        else:
            keep.append(members)
    order = np.concatenate(keep)
    return order[np.argsort(order, kind="stable")], factors


def _landmark_set(table: dict, rows: np.ndarray, class_names: tuple[str, ...], zero_z: bool,
                  notes: dict) -> LandmarkSet:
    index = {c: i for i, c in enumerate(class_names)}
    landmarks = table["landmarks"][rows].copy()
    if zero_z:
        landmarks[..., 2] = 0.0
    return LandmarkSet(landmarks, np.asarray([index[lab] for lab in table["label"][rows]], np.int32), class_names,
                       table["person"][rows], np.asarray([handedness_code(h) for h in table["hand"][rows]], np.int8),
                       np.full(len(rows), -1, np.int32), table["source"][rows], "pixels", notes)


def prepare_landmarks(root: str | Path, seed: int = 0, no_gesture: bool = True, finder=None,
                      cache_dir: str | Path | None = None, progress: bool = True, engine=None) -> Path:
    """Extract (or read from the cache) every hand under ``root`` and write one folder of
    ``train.npz`` / ``val.npz`` (/ ``test.npz``), ``boxes_<split>.npy`` and ``parts.json``
    (what was used for what, counts, hands per class) for ``seed``; returns the folder.

    ``engine`` runs the chunks (:func:`.engines.make_engine`; default: one process per core);
    ``finder`` (tests) runs them in this process with that finder."""
    from rnn_jax.data.hagrid.engines import make_engine

    layout = resolve_layout(root)
    base = Path(cache_dir) if cache_dir else default_extraction_cache()
    if engine is None:
        engine = make_engine("local", finder=finder)
    plan, counts = extract_layout(layout, base / "chunks", engine, progress=progress)
    if not any(p.pool in ("train", "trainval") for p, _ in plan):
        raise DataError(f"{layout.root} has no training part (crops, unannotated photos or annotated train)")
    keys = [c.key for _, chunks in plan for c in chunks]
    out = base / "sets" / hashlib.sha256(("|".join(keys) + f"|ng={no_gesture}|sets={SET_RULES_VERSION}"
                                          f"|seed={seed}").encode()).hexdigest()[:16]
    if (out / "parts.json").is_file():
        return out
    table = merge_chunks(plan)
    splits = split_rows(table)
    if "val" not in splits:
        raise DataError(f"{layout.root} has no annotated val split (or too few people to carve one) to "
                        "validate on")
    present = table["label"].distinct()
    class_names = tuple(sorted(present - {NO_GESTURE}) + ([NO_GESTURE] if no_gesture and NO_GESTURE in present else []))
    trained = table["label"].distinct(splits["train"])
    lacking = [c for c in class_names if c not in trained]
    if lacking:
        raise DataError(f"class {lacking[0]!r} has no training hand in {layout.root}; add its pictures or "
                        "leave its annotation file out")
    zero_z = not bool(np.all(table["z_known"][splits["train"]]))
    report: dict = {"root": str(layout.root), "layout": layout.kind, "rules_version": RULES_VERSION,
                    "seed": seed, "class_names": list(class_names), "z": "zeroed (annotated landmarks have no depth)"
                    if zero_z else "kept", "counts": counts, "statuses": table["statuses"],
                    "parts": [], "hands_per_class": {}, "people": {}}
    pictures: Counter = Counter()
    for part, chunks in plan:
        pictures[part] += sum(c.size for c in chunks)
    for part, count in pictures.items():  # one entry per part (a part spans many gesture files)
        rows = np.flatnonzero((table["pool"] == part.pool) & (table["kind"] == part.kind))
        hows = Counter(table["how"][rows].tolist())
        entry = {"split": part.pool, "part": part.kind, "path": part.source, "pictures": count,
                 "hands_kept": int(len(rows)), **{f"by_{k}": v for k, v in sorted(hows.items())}}
        if part.kind == "photos":
            entry["photos_with_other_hands"] = int(np.sum(table["others"][rows] > 0))
        report["parts"].append(entry)
    out.mkdir(parents=True, exist_ok=True)
    notes = {"hagrid": str(layout.root), "layout": layout.kind}
    for split, rows in splits.items():
        labels = table["label"][rows]
        report["hands_per_class"][split] = {c: int(np.sum(labels == c)) for c in class_names}
        kept = np.isin(labels, class_names)
        rows, labels = rows[kept], labels[kept]
        if split == "train":
            chosen, report["repeated"] = balanced(labels, seed=seed)
            rows = rows[chosen]
        data = _landmark_set(table, rows, class_names, zero_z, notes)
        save_landmarks(data, out / f"{split}.npz")
        save_npy_atomic(out / f"boxes_{split}.npy", table["box"][rows])
        report["people"][split] = int(len(np.unique(data.person_ids)))
    people = {split: table["person"].distinct(rows) for split, rows in splits.items()}
    report["people_in_two_splits"] = {f"{a}&{b}": len(people[a] & people[b])
                                      for i, a in enumerate(people) for b in list(people)[i + 1:]}
    write_json_atomic(out / "parts.json", report, indent=2)
    return out


def describe(folder: Path) -> str:
    """A short table of what each part gave (for the run's start-up message)."""
    report = json.loads((Path(folder) / "parts.json").read_text())
    lines = [f"HaGRID {report['layout']} at {report['root']} (landmarks cached in {folder}):"]
    for p in report["parts"]:
        extra = ", ".join(f"{k} {v}" for k, v in p.items() if k not in ("split", "part", "path", "pictures",
                                                                           "hands_kept"))
        lines.append(f"  {p['part']:<10} -> {p['split']:<8} {p['pictures']:>7} pictures, {p['hands_kept']:>7} hands "
                     f"kept ({extra})")
    skipped = {k: v for k, v in {**report.get("statuses", {}), **report.get("counts", {})}.items()
               if v and k.split(":")[-1] in ("no_hand", "unreadable", "missing", "missing_on_disk",
                                             "malformed_entries", "gesture_files_without_images")}
    if skipped:
        lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    if report["counts"].get("two_handed_photos"):
        lines.append(f"  two-handed gesture photos: {report['counts']['two_handed_photos']} (both hands kept, "
                     "each labelled with the gesture)")
    if report.get("repeated"):
        lines.append(f"  training classes balanced with seed {report['seed']} (under half the median repeated, "
                     "over the median cut): " + ", ".join(f"{k} x{v:g}" for k, v in report["repeated"].items()))
    per = report["hands_per_class"]
    lines.append("  hands per class: " + "; ".join(
        f"{c} " + "/".join(str(per[s][c]) for s in per) for c in report["class_names"]) + f"  ({'/'.join(per)})")
    lines.append(f"  z: {report['z']}")
    return "\n".join(lines)


def hagrid_landmark_sets(root: str | Path, seed: int = 0, no_gesture: bool = True, progress: bool = True,
                         engine=None) -> dict[str, LandmarkSet]:
    """Split name -> LandmarkSet of a HaGRID root (every layout; :func:`prepare_landmarks`)."""
    from rnn_jax.data.landmark_files import SPLITS, load_landmarks

    folder = prepare_landmarks(root, seed=seed, no_gesture=no_gesture, progress=progress, engine=engine)
    return {s: load_landmarks(folder / f"{s}.npz") for s in SPLITS if (folder / f"{s}.npz").is_file()}


def annotated_photos(root: str | Path, pool: str) -> list[tuple[Path, dict]]:
    """(photo, its boxes, labels and person) of every annotated photo of ``pool`` found on disk
    (the live check replays these; partial downloads are skipped)."""
    layout = resolve_layout(root)
    if pool not in layout.pools:
        raise DataError(f"{layout.root} has no annotated '{pool}' split (annotations/{pool}/*.json or "
                        "hagrid_annotations/{pool}/*.json)")
    reader = AnnotatedReader(layout)
    return [(layout.root / item.path, {"boxes": [tuple(b) for b in item.annotation["boxes"]],
                                       "labels": tuple(item.annotation["labels"]), "user": item.annotation["user"]})
            for items in reader.items(pool) for item in items]

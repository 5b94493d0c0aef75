"""Every HaGRID layout people download -> the landmark family: layouts resolved, annotated landmarks
placed in frame pixels, the finder only where landmarks are missing, chunks cached by content,
shards and a shared work list, Dask, and bad input as one clear error.

Fixtures are written in HaGRID's exact schemas (../shared/docs/hagrid-layouts.md) with small
drawn photos; the tests against real sample photos (the same photos in every layout, each\ntraining both families) and the real hand models are at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rnn_jax.data.hagrid import extract, prepare
from rnn_jax.data.hagrid.engines import SerialEngine
from rnn_jax.data.hagrid.layout import resolve_layout
from rnn_jax.data.landmark_files import load_landmarks
from rnn_jax.errors import ConfigError, DataError
from rnn_jax.hands.features import landmark_features
from tests.conftest import REPO, shared_data

V1_GESTURES = ("call", "dislike", "fist", "four", "like", "mute", "ok", "one", "palm", "peace", "peace_inverted",
               "rock", "stop", "stop_inverted", "three", "three2", "two_up", "two_up_inverted")
V2_EXTRA = ("grabbing", "grip", "holy", "point", "three3", "timeout", "xsign", "hand_heart", "hand_heart2",
            "little_finger", "middle_finger", "take_picture", "three_gun", "thumb_index", "thumb_index2")
TWO_HANDED = ("hand_heart", "hand_heart2", "thumb_index2", "timeout", "take_picture", "xsign")
SIZE = (96, 54)  # a 16:9 photo


def hand_shape(gesture: str, person: int) -> np.ndarray:
    """21 points (pixels around the origin) that differ by gesture and a little by person."""
    rng = np.random.default_rng(abs(hash(gesture)) % 2**32)
    base = rng.uniform(-8, 8, (21, 2))
    return base + np.random.default_rng(person).normal(0, 0.3, (21, 2))


def photo(path: Path, person: int, size=SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size[1], size[0], 3), 30 + 9 * person, np.uint8)
    cv2.imwrite(str(path), image)


def entry(gesture: str, person: int, size=SIZE, landmarks=True, v2=True) -> dict:
    """A HaGRID entry: the gesture hand and a no_gesture hand (two gesture hands for a two-handed
    v2 gesture, with the united box), landmarks normalised by the photo's width and height."""
    w, h = size
    centres = [(0.3 * w, 0.4 * h), (0.7 * w, 0.6 * h)]
    labels = [gesture, gesture if gesture in TWO_HANDED else "no_gesture"]
    boxes, hands = [], []
    for (cx, cy), label in zip(centres, labels, strict=True):
        pts = hand_shape(label, person) + (cx, cy)
        lo, hi = pts.min(0), pts.max(0)
        boxes.append([lo[0] / w, lo[1] / h, (hi[0] - lo[0]) / w, (hi[1] - lo[1]) / h])
        hands.append((pts / (w, h)).round(6).tolist() if landmarks else [])
    ann = {"bboxes": boxes, "labels": labels, "user_id": f"user{person:03d}"}
    ann["hand_landmarks" if v2 else "landmarks"] = hands
    if v2:
        two = gesture in TWO_HANDED
        ann["united_bbox"] = [[0.2, 0.2, 0.6, 0.6]] if two else None
        ann["united_label"] = [gesture] if two else None
        ann["meta"] = {"age": [30.0, 30.0], "gender": ["female", "female"], "race": ["White", "White"]}
    else:
        ann["leading_hand"], ann["leading_conf"] = "right", 1.0
    return ann


def annotate(ann_dir: Path, image_dir, gestures, people, v2=True, landmarks=True) -> None:
    for g in gestures:
        anns = {}
        for p in people:
            image_id = f"{g}-{p:03d}-0000-uuid"
            anns[image_id] = entry(g, p, landmarks=landmarks, v2=v2)
            photo(image_dir(g) / f"{image_id}.jpg", p)
        ann_dir.mkdir(parents=True, exist_ok=True)
        (ann_dir / f"{g}.json").write_text(json.dumps(anns))


def make_layout(root: Path, kind: str, gestures=("like", "palm", "peace"), landmarks=True) -> Path:
    """One fixture per layout, 10 people per gesture."""
    if kind in ("v2", "download"):
        images = lambda g: root / "hagrid_dataset" / g  # noqa: E731
        ann = root / ("annotations" if kind == "download" else "hagrid_annotations")
        annotate(ann / "train", images, gestures, range(0, 6), landmarks=landmarks)
        annotate(ann / "val", images, gestures, range(6, 8), landmarks=landmarks)
        annotate(ann / "test", images, gestures, range(8, 10), landmarks=landmarks)
    elif kind == "sample30k":
        outer = root / "hagrid-sample-30k-384p"
        annotate(outer / "ann_train_val", lambda g: outer / "hagrid_30k" / f"train_val_{g}", gestures, range(10),
                 v2=False, landmarks=landmarks)
    elif kind == "v1":
        annotate(root / "ann_train_val", lambda g: root / f"train_val_{g}", gestures, range(8), v2=False,
                 landmarks=landmarks)
        annotate(root / "ann_test", lambda g: root / "test" / g, gestures, range(8, 10), v2=False,
                 landmarks=landmarks)
    return root


class NoFinder:
    """A finder that must not be needed (every box has annotated landmarks)."""

    config = None

    def __getattr__(self, name):
        raise AssertionError(f"the hand finder was used ({name}) although every box has landmarks")


def sets_of(root: Path, cache: Path, seed: int = 0, finder=None) -> dict:
    folder = prepare.prepare_landmarks(root, seed=seed, finder=finder or NoFinder(), cache_dir=cache, progress=False)
    return {s: load_landmarks(folder / f"{s}.npz") for s in ("train", "val", "test") if (folder / f"{s}.npz").is_file()}


def by_hand(root: Path, cache: Path, engine=None) -> dict:
    """(photo stem, label, box corner) -> xy features of every hand the layout gives (before balancing;
    not mirrored: v2 annotations do not say which hand is the left one, the finder does)."""
    plan, _ = prepare.extract_layout(resolve_layout(root), cache, engine or SerialEngine(NoFinder()), progress=False)
    table = prepare.merge_chunks(plan)
    feats = landmark_features(table["landmarks"], None)
    return {(Path(str(table["source"][i])).stem, str(table["label"][i]), tuple(table["box"][i, :2].round(4))):
            feats[i, :, :2] for i in range(len(feats))}


# ----------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("kind,expected", [("v2", "v2"), ("download", "v2"), ("sample30k", "sample30k"), ("v1", "v1")])
def test_every_layout_is_resolved_and_trains_landmarks_by_default(tmp_path: Path, kind: str, expected: str,
                                                                  monkeypatch) -> None:
    import argparse

    import rnn_jax.hands.models
    from experiments import hagrid

    root = make_layout(tmp_path / kind, kind)
    assert resolve_layout(root).kind == expected
    if kind == "sample30k":  # the inner folder as root too
        assert resolve_layout(root / "hagrid-sample-30k-384p" / "hagrid_30k").kind == "sample30k"
    monkeypatch.setattr(rnn_jax.hands.models, "models_present", lambda *a, **k: True)
    assert hagrid.choose_family(argparse.Namespace(family="auto"), root) == "landmarks"


def test_nested_annotation_folder_and_plain_folders(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "v2", "v2")
    (root / "annotations").mkdir()
    shutil.move(str(root / "hagrid_annotations"), str(root / "annotations" / "hagrid_annotations"))
    assert resolve_layout(root).kind == "v2"
    photo(tmp_path / "folders" / "like" / "a.jpg", 1)
    assert resolve_layout(tmp_path / "folders").kind == "folders"
    with pytest.raises(ConfigError, match="plain class folders"):
        prepare.prepare_landmarks(tmp_path / "folders", finder=NoFinder(), cache_dir=tmp_path / "c", progress=False)


def test_annotated_landmarks_are_placed_in_pixels_with_the_photos_aspect(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "v2", "download")
    sets = sets_of(root, tmp_path / "cache")
    train = sets["train"]
    assert train.coords == "pixels" and np.all(train.landmarks[..., 2] == 0)
    # the like hand of person 0, placed back in pixels: exactly the drawn hand (16:9 kept, not squeezed)
    i = next(k for k in range(len(train)) if str(train.sources[k]).endswith("like-000-0000-uuid.jpg")
             and train.class_names[train.labels[k]] == "like")
    drawn = hand_shape("like", 0) + (0.3 * SIZE[0], 0.4 * SIZE[1])
    np.testing.assert_allclose(train.landmarks[i, :, :2], drawn, atol=1e-3 * SIZE[0])
    squeezed = drawn / SIZE  # what keeping HaGRID's 0..1 units would give: another shape
    assert np.abs(landmark_features(np.c_[squeezed, np.zeros(21)])[:, :2]
                  - landmark_features(np.c_[drawn, np.zeros(21)])[:, :2]).max() > 0.05
    # no_gesture hands are kept as a class; sources are relative to the root (portable)
    assert train.class_names == ("like", "palm", "peace", "no_gesture")
    assert not Path(str(train.sources[0])).is_absolute()
    report = json.loads((next((tmp_path / "cache" / "sets").iterdir()) / "parts.json").read_text())
    assert report["z"].startswith("zeroed")
    assert sum(p.get("by_annotation", 0) for p in report["parts"]) == report["counts"]["boxes"]  # no finder


def test_boxes_without_landmarks_go_to_the_finder(tmp_path: Path, monkeypatch) -> None:
    root = make_layout(tmp_path / "v2", "v2")
    path = root / "hagrid_annotations" / "val" / "like.json"
    anns = json.loads(path.read_text())
    first = next(iter(anns))
    anns[first]["hand_landmarks"] = [[], anns[first]["hand_landmarks"][1]]  # the gesture hand's are empty
    second = list(anns)[1]
    del anns[second]["hand_landmarks"]  # no landmarks field at all
    path.write_text(json.dumps(anns))
    looked = []

    def fake_second_look(finder, image, box):
        looked.append(box)
        return np.c_[hand_shape("like", 99) + box[:2], np.full(21, 0.5)], 0.9, "right"

    monkeypatch.setattr(extract, "second_look", fake_second_look)

    class Finder:
        config = None

    sets = sets_of(root, tmp_path / "cache", finder=Finder())
    assert len(looked) == 3  # one box of the first photo, both of the second; nothing else decoded
    val = sets["val"]
    hows = json.loads((next((tmp_path / "cache" / "sets").iterdir()) / "parts.json").read_text())["parts"]
    val_part = next(p for p in hows if p["split"] == "val")
    assert val_part["by_annotated_box"] == 3 and val_part["by_annotation"] == len(val) - 3
    assert np.all(val.landmarks[..., 2] == 0)  # z zeroed for every hand once any hand lacks it


def test_v2_with_33_gestures_keeps_both_hands_of_two_handed_gestures(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "v2", "v2", gestures=V1_GESTURES + V2_EXTRA)
    sets = sets_of(root, tmp_path / "cache")
    names = sets["train"].class_names
    assert len(names) == 34 and names[-1] == "no_gesture" and set(names[:-1]) == set(V1_GESTURES + V2_EXTRA)
    report = json.loads((next((tmp_path / "cache" / "sets").iterdir()) / "parts.json").read_text())
    assert report["counts"]["two_handed_photos"] == len(TWO_HANDED) * 10
    # a two-handed gesture: both hands of each photo are examples of it, no no_gesture hand
    assert report["hands_per_class"]["train"]["hand_heart"] == 12 and report["hands_per_class"]["train"]["like"] == 6
    assert "two-handed gesture photos: 60" in prepare.describe(next((tmp_path / "cache" / "sets").iterdir()))


def test_a_train_val_pool_is_split_by_person_the_same_for_every_seed(tmp_path: Path) -> None:
    root = make_layout(tmp_path / "v1", "v1")
    a, b = sets_of(root, tmp_path / "cache", seed=0), sets_of(root, tmp_path / "cache", seed=1)
    assert set(a) == {"train", "val", "test"}
    assert set(a["val"].person_ids) == set(b["val"].person_ids)  # fixed person split: comparable seeds
    assert not set(a["train"].person_ids) & set(a["val"].person_ids)
    assert not set(a["test"].person_ids) & (set(a["train"].person_ids) | set(a["val"].person_ids))


def test_the_same_hands_from_every_layout(tmp_path: Path) -> None:
    hands = {kind: by_hand(make_layout(tmp_path / kind, kind), tmp_path / f"cache-{kind}")
             for kind in ("v2", "download", "sample30k", "v1")}
    reference = hands["v2"]
    for kind, got in hands.items():
        assert set(got) == set(reference), kind
        for key, feats in got.items():
            np.testing.assert_allclose(feats, reference[key], atol=1e-4, err_msg=f"{kind} {key}")


def test_the_merged_table_keeps_every_string_through_its_compact_columns(tmp_path: Path) -> None:
    """Two chunks whose labels, people and paths differ (one path not ASCII): the compact table
    (codes, UTF-8 bytes) gives back each row's strings in plan order; a value no row has is
    False everywhere (a wrong code mapping or a lost character fails here)."""
    rows = [[{"label": lab, "person": per, "hand": "", "how": "annotation", "source": src, "others": 0,
              "landmarks": np.full((21, 3), i, np.float32), "box": np.zeros(4), "presence": 1.0, "z_known": False}
             for i, (lab, per, src) in enumerate(spec)]
            for spec in ([("like", "u1", "a/like/1.jpg"), ("palm", "u2", "a/palm/2.jpg")],
                         [("palm", "u3", "a/palm/été-3.jpg"), ("no_gesture", "u1", "a/palm/4.jpg")])]
    plan = []
    for k, chunk_rows in enumerate(rows):
        chunk = extract.Chunk("annotated", k, (), f"key{k}", tmp_path / f"c{k}.npz", len(chunk_rows))
        extract.save_chunk(chunk, extract.rows_to_arrays(chunk_rows, []))
        plan.append((prepare.Part("train", "annotated", "ann"), [chunk]))
    table = prepare.merge_chunks(plan)
    expected = [r for chunk_rows in rows for r in chunk_rows]
    for key in ("label", "person", "source", "how"):
        assert table[key][np.arange(4)].tolist() == [r[key] for r in expected], key
    assert str(table["source"][2]) == "a/palm/été-3.jpg"
    assert (table["label"] == "palm").tolist() == [False, True, True, False]
    assert not (table["label"] == "fist").any() and table["pool"].distinct() == {"train"}
    assert table["person"].distinct(np.array([0, 3])) == {"u1"}


# ----------------------------------------------------------------------------- cache, shards, work list
def _arrays(folder: Path) -> dict:
    return {s: load_landmarks(folder / f"{s}.npz") for s in ("train", "val", "test") if (folder / f"{s}.npz").is_file()}


def _same_sets(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for s in a:
        np.testing.assert_array_equal(a[s].landmarks, b[s].landmarks)
        assert a[s].sources.tolist() == b[s].sources.tolist() and a[s].labels.tolist() == b[s].labels.tolist()


def test_shards_merged_equal_the_unsharded_run_and_a_moved_cache_is_reused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 4)
    root = make_layout(tmp_path / "v2", "v2")
    whole = prepare.prepare_landmarks(root, finder=NoFinder(), cache_dir=tmp_path / "whole", progress=False)
    layout = resolve_layout(root)
    engine = SerialEngine(NoFinder())
    counts = [prepare.extract_layout(layout, tmp_path / "sharded" / "chunks", engine, (k, 3), progress=False)[1]
              for k in (1, 2, 3)]
    assert sum(c["extracted_here"] for c in counts) == len(list((tmp_path / "whole" / "chunks").glob("*.npz")))
    with pytest.raises(DataError, match="missing"):  # one shard gone: the merge names a missing chunk
        victim = next((tmp_path / "sharded" / "chunks").glob("*.npz"))
        moved = victim.with_suffix(".bak")
        victim.rename(moved)
        prepare.merge_chunks(list(prepare.extraction_chunks(layout, tmp_path / "sharded" / "chunks")))
    moved.rename(victim)
    merged = prepare.prepare_landmarks(root, finder=NoFinder(), cache_dir=tmp_path / "sharded", progress=False)
    _same_sets(_arrays(whole), _arrays(merged))
    # the data and the cache moved elsewhere (another machine): every chunk is reused, rows identical
    shutil.copytree(root, tmp_path / "elsewhere" / "hagrid")
    shutil.copytree(tmp_path / "whole", tmp_path / "elsewhere" / "cache")

    class Refuses:
        def run(self, chunks, root):
            raise AssertionError(f"{len(chunks)} chunks extracted again after the move")

    again = prepare.prepare_landmarks(tmp_path / "elsewhere" / "hagrid", cache_dir=tmp_path / "elsewhere" / "cache",
                                      progress=False, engine=Refuses())
    _same_sets(_arrays(whole), _arrays(again))


def _chunks(tmp_path: Path, n: int = 6) -> tuple[Path, list]:
    root = make_layout(tmp_path / "v2", "v2", gestures=("like",))
    items = [it for items in prepare.AnnotatedReader(resolve_layout(root)).items("train") for it in items]
    (tmp_path / "chunks").mkdir()
    return root, extract.plan_chunks("annotated", root, items[:n], tmp_path / "chunks")


class Counting:
    """An engine that records which chunks it ran (and can stop after some)."""

    def __init__(self, stop_after: int | None = None, delay: float = 0.0) -> None:
        self.ran: list[str] = []
        self.stop_after, self.delay = stop_after, delay

    def run(self, chunks, root):
        for chunk in chunks:
            if self.stop_after is not None and len(self.ran) == self.stop_after:
                raise KeyboardInterrupt
            time.sleep(self.delay)
            self.ran.append(chunk.key)
            yield chunk, extract.extract_chunk(chunk.kind, str(root), chunk.items, NoFinder())


def test_an_interrupted_run_keeps_its_chunks_and_releases_its_claims(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 1)
    root, chunks = _chunks(tmp_path)
    first = Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        extract.run_work_list(chunks, root, first, progress=False)
    assert sum(c.path.is_file() for c in chunks) == 2 and not any(c.claim.exists() for c in chunks)
    second = Counting()
    counts = extract.run_work_list(chunks, root, second, progress=False)
    assert counts["cached"] == 2 and len(second.ran) == 4 and not set(first.ran) & set(second.ran)


def test_two_runs_on_one_cache_share_the_work_list(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 1)
    root, chunks = _chunks(tmp_path)
    runs = [Counting(delay=0.05), Counting(delay=0.05)]
    results = [None, None]

    def go(k: int) -> None:
        results[k] = extract.run_work_list(chunks, root, runs[k], progress=False, poll_s=0.02)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = runs[0].ran + runs[1].ran
    assert sorted(done) == sorted(c.key for c in chunks)  # every chunk once, none twice
    assert all(r["missing"] == 0 for r in results) and all(c.path.is_file() for c in chunks)


def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_left_to_its_owner(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 1)
    root, chunks = _chunks(tmp_path, 2)
    chunks[0].claim.write_text("{}")  # someone else is working on it now
    chunks[1].claim.write_text("{}")
    old = time.time() - 2 * extract.CLAIM_TIMEOUT_S
    os.utime(chunks[1].claim, (old, old))  # ... and this owner died long ago
    engine = Counting()
    counts = extract.run_work_list(chunks, root, engine, progress=False, wait=False)
    assert engine.ran == [chunks[1].key] and counts["missing"] == 1 and chunks[0].claim.exists()


@pytest.mark.slow
def test_a_two_worker_dask_cluster_extracts_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("distributed", reason="Dask is the optional [scale] extra")
    from rnn_jax.data.hagrid.engines import DaskEngine

    monkeypatch.setattr(extract, "CHUNK", 5)  # the workers use their own CHUNK: only the plan is cut here
    root = make_layout(tmp_path / "v2", "v2")
    serial = prepare.prepare_landmarks(root, finder=NoFinder(), cache_dir=tmp_path / "serial", progress=False)
    engine = DaskEngine(workers=2)
    try:
        assert engine.worker_count == 2
        dask = prepare.prepare_landmarks(root, cache_dir=tmp_path / "dask", progress=False, engine=engine)
    finally:
        engine.close()
    _same_sets(_arrays(serial), _arrays(dask))


# ----------------------------------------------------------------------------- bad input
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnn_jax.data.hagrid", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RNN_JAX_CACHE": "/nonexistent/decoded"})


@pytest.mark.parametrize("case", ["mixed", "two_annotation_folders", "wrong_schema", "not_json", "bad_shard"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    root = make_layout(tmp_path / "v2", "v2", gestures=("like",))
    args = ["--data", str(root), "--cache", str(tmp_path / "cache")]
    expected = {"mixed": "mixes HaGRID layouts", "two_annotation_folders": "mixes HaGRID layouts",
                "wrong_schema": "not a HaGRID annotation", "not_json": "is not valid JSON",
                "bad_shard": "--shard must look like K/N"}[case]
    if case == "mixed":
        (root / "ann_train_val").mkdir()
        (root / "ann_train_val" / "like.json").write_text("{}")
    elif case == "two_annotation_folders":
        shutil.copytree(root / "hagrid_annotations", root / "annotations")
    elif case == "wrong_schema":
        (root / "hagrid_annotations" / "train" / "like.json").write_text(json.dumps([{"bboxes": []}]))
    elif case == "not_json":
        (root / "hagrid_annotations" / "train" / "like.json").write_text("{not json")
    else:
        args += ["--shard", "3"]
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr


def test_empty_or_malformed_landmarks_fall_back_to_the_finder_and_bad_entries_are_counted(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    root = make_layout(tmp_path / "v2", "v2", gestures=("like", "palm"))
    path = root / "hagrid_annotations" / "train" / "like.json"
    anns = json.loads(path.read_text())
    ids = list(anns)
    anns[ids[0]]["hand_landmarks"] = [[[0.1, 0.2]] * 20, []]  # 20 points, then none
    anns[ids[1]]["hand_landmarks"] = [[[float("nan"), 0.1]] * 21, anns[ids[1]]["hand_landmarks"][1]]
    anns[ids[2]] = {"bboxes": [[0.1, 0.1, 0.2]], "labels": ["like"], "user_id": "x"}  # a 3-number box
    path.write_text(json.dumps(anns))
    looked = []
    monkeypatch.setattr(extract, "second_look",
                        lambda finder, image, box: looked.append(box) or (np.c_[hand_shape("like", 5) + box[:2],
                                                                                  np.zeros(21)], 0.9, "right"))

    class Finder:
        config = None

    sets_of(root, tmp_path / "cache", finder=Finder())
    assert len(looked) == 3
    report = json.loads((next((tmp_path / "cache" / "sets").iterdir()) / "parts.json").read_text())
    assert report["counts"]["malformed_entries"] == 1


# ----------------------------------------------------------------------------- real photos, real models
REAL_GESTURES = ("like", "palm", "peace")
REAL_KINDS = ("v2", "download", "sample30k", "v1")  # with annotated landmarks; "sample": the sample's own layout


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory, hand_models: Path) -> tuple[dict, dict]:
    """Nine real val photos of the sample (three gestures, three each) and their annotations; each
    box's landmarks from the real second look, normalised like HaGRID's (these play the
    annotations' landmarks). The last photo of each gesture is its person's val photo."""
    from rnn_jax.hands import HandFinder
    from rnn_jax.preprocess import read_image

    src = shared_data("hagrid-sample")
    finder = HandFinder.load(hand_models, threads=1)
    photos, anns = {}, {}
    for g in REAL_GESTURES:
        entries = json.loads((src / "hagrid_annotations" / "val" / f"{g}.json").read_text())
        for image_id in sorted(entries)[:3]:
            ann = dict(entries[image_id])
            path = src / "hagrid_dataset" / g / f"{image_id}.jpg"
            image = read_image(path, 3)
            h, w = image.shape[:2]
            hands = []
            for bx, by, bw, bh in ann["bboxes"]:
                lm, _, _ = extract.second_look(finder, image, (bx * w, by * h, bw * w, bh * h))
                hands.append((lm[:, :2] / (w, h)).round(7).tolist())
            ann["hand_landmarks"] = hands
            photos[image_id] = (g, path)
            anns.setdefault(g, {})[image_id] = ann
    return photos, anns


def _write_real(root: Path, kind: str, photos: dict, anns: dict) -> Path:
    """The same real photos and annotations in one layout, in its exact schema: ``sample`` (the
    sample's own layout, ``hagrid_annotations/`` without landmarks: what the sample reader reads),
    ``v2`` (``hagrid_annotations/`` with landmarks), ``download`` (``annotations/``, as
    tools/download_hagrid.py writes it), ``sample30k`` or ``v1`` (``train_val`` pools, split by
    person by the reader). v2 pools: each gesture's last photo's person is a val person."""
    val_users = {entries[max(entries)]["user_id"] for entries in anns.values()}
    for g, entries in anns.items():
        pools: dict = {}
        for image_id, ann in entries.items():
            ann = dict(ann)
            if kind == "sample":
                del ann["hand_landmarks"]
            elif kind in ("sample30k", "v1"):
                ann["landmarks"] = ann.pop("hand_landmarks")
                ann["leading_hand"] = "right"
            pool = "train_val" if kind in ("sample30k", "v1") else "val" if ann["user_id"] in val_users else "train"
            pools.setdefault(pool, {})[image_id] = ann
            folder = {"v1": root / f"train_val_{g}",
                      "sample30k": root / "hagrid-sample-30k-384p" / "hagrid_30k" / f"train_val_{g}"
                      }.get(kind, root / "hagrid_dataset" / g)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(photos[image_id][1], folder / f"{image_id}.jpg")
        for pool, content in pools.items():
            ann_dir = {"download": root / "annotations" / pool, "v1": root / "ann_train_val",
                       "sample30k": root / "hagrid-sample-30k-384p" / "ann_train_val"
                       }.get(kind, root / "hagrid_annotations" / pool)
            ann_dir.mkdir(parents=True, exist_ok=True)
            (ann_dir / f"{g}.json").write_text(json.dumps(content))
    return root


@pytest.mark.slow
def test_every_layout_of_real_photos_yields_the_sample_readers_hands(tmp_path: Path, real_photos,
                                                                     hand_models: Path) -> None:
    """The same nine real photos in each layout: the sample's own layout (no landmarks: the
    finder's second look at each box) is the reference; every layout whose annotations carry the
    landmarks gives the same hands, placed in pixels with the photo's aspect, with the same
    features (the two routes agree within 2e-3 of a hand's size; layouts among themselves 1e-4)."""
    from rnn_jax.data.hagrid.engines import LocalProcessEngine

    photos, anns = real_photos
    engine = LocalProcessEngine(1, str(hand_models))
    reference = by_hand(_write_real(tmp_path / "sample", "sample", photos, anns), tmp_path / "c-sample", engine)
    assert len(reference) >= 9  # every box of the nine photos
    annotated = {kind: by_hand(_write_real(tmp_path / kind, kind, photos, anns), tmp_path / f"c-{kind}")
                 for kind in REAL_KINDS}  # NoFinder: annotated landmarks only
    for kind, got in annotated.items():
        assert set(got) == set(reference), kind
        for key, feats in got.items():
            np.testing.assert_allclose(feats, reference[key], atol=2e-3, err_msg=f"{kind} {key}")
            np.testing.assert_allclose(feats, annotated["v2"][key], atol=1e-4, err_msg=f"{kind} {key}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", REAL_KINDS)
@pytest.mark.parametrize("family", ["landmarks", "image"])
def test_each_layout_of_real_photos_trains_each_family(tmp_path: Path, real_photos, kind: str, family: str,
                                                       monkeypatch) -> None:
    """experiments.hagrid on each layout of the real photos: one generation of each family, with the
    classes the annotations name."""
    from experiments import hagrid

    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "cache" / "decoded"))
    root = _write_real(tmp_path / kind, kind, *real_photos)
    args = ["--data", str(root), "--family", family, "--gens", "1", "--epochs", "1", "--batch-size", "2",
            "--no-progress", "--out", str(tmp_path / "run")]
    if family == "image":
        args += ["--model", "cnn", "--size", "tiny", "--image-size", "16", "--crop", "hand", "--no-gesture"]
    hagrid.main(args)
    record = json.loads((tmp_path / "run" / "lineage.json").read_text())
    assert set(REAL_GESTURES) <= set(record["data"]["class_names"]) <= {*REAL_GESTURES, "no_gesture"}
    assert record["config"]["model"]["name"] == ("lmlp" if family == "landmarks" else "cnn")
    assert record["generations"][0]["status"] == "done"


@pytest.mark.slow
@pytest.mark.parametrize("kind,family", [("v2", "image"), ("download", "landmarks")])
def test_drawn_layouts_train_each_family(tmp_path: Path, kind: str, family: str, monkeypatch) -> None:
    """Both families without ../shared (each layout on real photos: the test above)."""
    import rnn_jax.hands.models
    from experiments import hagrid

    monkeypatch.setattr(rnn_jax.hands.models, "models_present", lambda *a, **k: True)
    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "cache" / "decoded"))
    root = make_layout(tmp_path / kind, kind)
    args = ["--data", str(root), "--family", family, "--gens", "1", "--epochs", "1", "--batch-size", "8",
            "--no-progress", "--out", str(tmp_path / "run")]
    if family == "image":
        args += ["--model", "cnn", "--size", "tiny", "--image-size", "16", "--crop", "hand", "--no-gesture"]
    gpu = family == "landmarks" and kind == "download"  # main() applies the landmark family's gpu preset
    if gpu:
        args += ["--preset", "gpu"]  # its batch 1024 is more than the fixture: the explicit --batch-size 8 wins
    hagrid.main(args)
    record = json.loads((tmp_path / "run" / "lineage.json").read_text())
    if gpu:
        assert record["config"]["model"]["size"] == "medium" and record["config"]["train"]["lr"] == 1.2e-2
        assert record["config"]["train"]["batch_size"] == 8
    assert sorted(record["data"]["class_names"]) == ["like", "no_gesture", "palm", "peace"]
    assert record["config"]["model"]["name"] == ("lmlp" if family == "landmarks" else "cnn")
    assert record["generations"][0]["status"] == "done"


def test_hand_models_use_cuda_only_where_onnxruntime_offers_it(monkeypatch) -> None:
    import onnxruntime as ort

    from rnn_jax.ort_options import hand_model_providers

    monkeypatch.delenv("RNN_JAX_HANDS_DEVICE", raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert hand_model_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="no CUDA provider"):
        hand_model_providers("cuda")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert hand_model_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setenv("RNN_JAX_HANDS_DEVICE", "cpu")
    assert hand_model_providers() == ["CPUExecutionProvider"]


def test_the_gpu_preset_is_a_landmark_preset_for_the_landmark_family(tmp_path: Path, monkeypatch) -> None:
    """--preset gpu on HaGRID means the landmark family's GPU preset (printed), never a silent swap."""
    import argparse

    from experiments import hagrid
    from rnn_jax.presets import PRESETS

    root = make_layout(tmp_path / "v2", "download")
    chosen = hagrid.choose_preset(argparse.Namespace(preset="gpu"), root, "landmarks")
    assert chosen is PRESETS["landmarks-gpu"] and chosen.batch_size >= 512
    assert hagrid.choose_preset(argparse.Namespace(preset="cpu"), root, "landmarks") is PRESETS["landmarks"]
    assert hagrid.choose_preset(argparse.Namespace(preset="gpu"), root, "image") is PRESETS["gpu"]


@pytest.mark.parametrize("subset,expected", [("v2", "v2"), ("v1", "v1"), ("sample30k", "sample30k")])
def test_what_the_downloader_writes_is_read_as_hagrid(tmp_path: Path, subset: str, expected: str) -> None:
    """Folders named by tools/download_hagrid.py's own plan (its archives' tops), filled with
    annotations and photos, resolve to their layout and give landmark sets."""
    from rnn_jax.data.download import plan

    gestures = ("like", "palm", "peace")
    out = tmp_path / "hagrid"
    folders = {a.name: out / a.extract_to / (a.top or "") for a in plan(subset, gestures)}
    if subset == "v2":
        for pool, people in (("train", range(6)), ("val", range(6, 8))):
            annotate(folders["annotations"] / pool, lambda g: folders[g], gestures, people)
    elif subset == "v1":
        annotate(folders["ann_train_val"], lambda g: folders[f"train_val_{g}"], gestures, range(10), v2=False)
    else:
        top = folders["hagrid-sample-30k-384p"]
        annotate(top / "ann_train_val", lambda g: top / "hagrid_30k" / f"train_val_{g}", gestures, range(10), v2=False)
    assert resolve_layout(out).kind == expected
    sets = sets_of(out, tmp_path / "cache")
    assert sets["train"].class_names == ("like", "palm", "peace", "no_gesture") and len(sets["val"]) > 0

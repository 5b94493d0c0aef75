"""tools/live_accuracy.py: the video made from labelled photos agrees with offline evaluation."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.onnx_fixtures import write_fixture_onnx

spec = importlib.util.spec_from_file_location("live_accuracy", REPO / "tools" / "live_accuracy.py")
live_accuracy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(live_accuracy)


def test_solid_colour_photos_are_recognised_live_as_offline(tmp_path):
    onnx_path = write_fixture_onnx(tmp_path / "colours.onnx")
    colours = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}  # BGR
    for name, bgr in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(3):
            image = np.full((40, 40, 3), bgr, np.uint8)
            cv2.imwrite(str(tmp_path / "photos" / name / f"{i}.png"), image)
    result = live_accuracy.run(onnx_path, tmp_path / "photos", hold=10, settle=6, smoothing="ema:0.5",
                               threshold=0.6, stable_frames=3)
    assert result["photos"] == 9 and result["frames"] == 90 and result["frames_scored"] == 36
    assert result["offline_accuracy"] == 1.0
    assert result["live_accuracy"] == 1.0


def _digit_photos(tmp_path):
    """Two real Sign Language Digits photos of each of two digits, as class folders."""
    import shutil

    from tests.conftest import shared_data

    src = shared_data("sign-language-digits", "val")
    root = tmp_path / "digits"
    for digit in ("1", "5"):
        (root / digit).mkdir(parents=True)
        for photo in sorted((src / digit).iterdir())[:2]:
            shutil.copy(photo, root / digit / photo.name)
    return root


def _same_live_as_offline(result: dict, photos: int = 4, hold: int = 8, settle: int = 4) -> None:
    assert result["hands"] and result["photos"] == photos and result["photos_without_hand"] == 0
    assert result["frames"] == photos * hold and result["frames_scored"] == photos * (hold - settle)
    assert result["stable_coverage"] == 1.0  # threshold 0: a hand found (and a label shown) on every scored frame
    assert result["live_accuracy"] == result["offline_accuracy"]


@pytest.mark.shared
def test_hands_on_scores_the_hand_crops_live_as_offline(tmp_path, hand_models):
    from tests.onnx_fixtures import make_fixture_info

    onnx_path = write_fixture_onnx(tmp_path / "hand.onnx", num_classes=2,
                                   info=make_fixture_info(class_names=("1", "5"), crop_mode="hand"))
    result = live_accuracy.run(onnx_path, _digit_photos(tmp_path), hold=8, settle=4, smoothing="none",
                               threshold=0.0, stable_frames=1, hands="on", hand_models=hand_models)
    assert not result["landmark_model"]
    _same_live_as_offline(result)
    # the colour-mean fixture calls every skin-toned crop "1" (red channel > green): 2 of 4 right
    assert result["offline_accuracy"] == 0.5


def _fitted_landmark_onnx(tmp_path, photos, hand_models):
    """An lmlp whose head is fitted (ridge) to its hidden features of these very photos' hands, found
    as the tool finds them offline (padded photo, most present hand): offline it is right on every
    photo by a margin and predicts both classes, so live equals offline only if the live loop feeds
    it the same features (a wrong normalisation, handedness or crop changes its answers)."""
    import jax.numpy as jnp
    from flax import nnx

    from rnn_jax.data.landmark_synthetic import builtin_landmarks
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.hands import HandFinder, find_hands_in_image, pad_for_detection
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.preprocess import read_image
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo, load_predictor

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), 2, seed=0)
    parity = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=("1", "5"), state_size=0, state_layout=state_layout(model))
    path = tmp_path / "fitted.onnx"
    export_landmark_model(model, info, path, parity)  # the file's feature rule, for the features below
    predictor, finder = load_predictor(path), HandFinder.load(hand_models, threads=None)
    features, labels = [], []
    for k, digit in enumerate(info.class_names):
        for photo in sorted((photos / digit).iterdir()):
            hand = max(find_hands_in_image(finder, pad_for_detection(read_image(photo, 3))), key=lambda h: h.presence)
            features.append(predictor.features(hand.landmarks, hand.handedness)[0])
            labels.append(k)
    h = jnp.asarray(np.stack(features)).reshape(len(features), -1)
    for layer, norm in zip(model.layers, model.norms):
        h = nnx.gelu(norm(layer(h)))
    h = np.asarray(h, np.float64)
    targets = np.where(np.eye(2)[labels] > 0, 4.0, -4.0)
    model.head.kernel[...] = jnp.asarray(h.T @ np.linalg.solve(h @ h.T + 0.1 * np.eye(len(h)), targets), jnp.float32)
    model.head.bias[...] = jnp.zeros(2, jnp.float32)
    export_landmark_model(model, info, path, parity)
    return path


@pytest.mark.shared
def test_a_landmark_model_runs_on_the_hand_finder_live_as_offline(tmp_path, hand_models):
    photos = _digit_photos(tmp_path)
    onnx_path = _fitted_landmark_onnx(tmp_path, photos, hand_models)
    result = live_accuracy.run(onnx_path, photos, hold=8, settle=4, smoothing="none",
                               threshold=0.0, stable_frames=1, hands="auto", hand_models=hand_models)
    assert result["landmark_model"]  # the README's command: no --hands, the finder comes with the model
    assert result["offline_accuracy"] == 1.0  # both digits told apart offline: not one class for every hand
    _same_live_as_offline(result)


def _mini_hagrid(tmp_path, gestures=("call", "like", "palm"), per_gesture=2):
    """A HaGRID root of a few real annotated val photos (symlinked), in the sample's layout."""
    import json

    from tests.conftest import shared_data

    source = shared_data("hagrid-sample")
    root = tmp_path / "mini"
    for gesture in gestures:
        entries = json.loads((source / "hagrid_annotations" / "val" / f"{gesture}.json").read_text())
        keep = dict(list(entries.items())[:per_gesture])
        (root / "hagrid_annotations" / "val").mkdir(parents=True, exist_ok=True)
        (root / "hagrid_annotations" / "val" / f"{gesture}.json").write_text(json.dumps(keep))
        (root / "hagrid_dataset" / gesture).mkdir(parents=True, exist_ok=True)
        for name in keep:
            (root / "hagrid_dataset" / gesture / f"{name}.jpg").symlink_to(
                source / "hagrid_dataset" / gesture / f"{name}.jpg")
    return root


def _landmark_onnx(tmp_path, class_names):
    from rnn_jax.data.landmark_synthetic import builtin_landmarks
    from rnn_jax.export.landmark_export import export_landmark_model, state_layout
    from rnn_jax.hands.features import landmark_features
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("lmlp", "tiny"), (1, 21, 3), len(class_names), seed=0)
    frames = landmark_features(builtin_landmarks(people=3, per_class=3).landmarks[:60])
    info = LandmarkInfo(class_names=tuple(class_names), state_size=0, state_layout=state_layout(model),
                        reject_threshold=0.5, temperature=1.0)
    path = tmp_path / "lm.onnx"
    export_landmark_model(model, info, path, frames)
    return path


@pytest.mark.shared
def test_a_threshold_sweep_replays_the_same_frames_and_stores_its_choice(tmp_path, hand_models):
    """--hagrid --sweep: hands are found once and replayed; at the first pass's own threshold the
    replay scores exactly what the first pass scored, and --store writes the chosen threshold
    into the file that rnn_jax.live then uses by default."""
    from rnn_jax.runtime.landmark_predictor import load_predictor

    root = _mini_hagrid(tmp_path)
    onnx_path = _landmark_onnx(tmp_path, ["call", "like", "no_gesture", "palm"])
    result = live_accuracy.run_hagrid(onnx_path, root, "val", hold=6, settle=2, smoothing="ema:0.5",
                                      threshold=0.4, stable_frames=2, frame_size=640, hand_models=hand_models,
                                      sweep=(0.0, 0.4, 0.99))
    rows = {row["threshold"]: row for row in result["sweep"]}
    assert result["gesture_frames"] == 6 * 4  # 3 gestures x 2 photos x (6 - 2) settled frames
    for key in ("live_gesture_right", "live_gesture_wrong", "live_gesture_lost", "live_resting_triggered"):
        assert rows[0.4][key] == result[key]
    assert rows[0.0]["live_gesture_lost"] == rows[0.99]["live_gesture_lost"] == result["live_gesture_lost"]
    shown = {t: rows[t]["live_gesture_right"] + rows[t]["live_gesture_wrong"] for t in rows}
    assert shown[0.0] >= shown[0.4] >= shown[0.99]  # a higher threshold never shows more gestures

    assert result["resting_frames"] == 4  # one no_gesture hand in the six photos, 4 settled frames
    assert result["resting_lost"] == 0
    # --store on the same frames (same hold, settle, smoothing): the sweep is 0.30..0.90; the model is
    # untrained, so which thresholds keep the resting hand quiet is whatever it is, but the choice
    # must be one that keeps the target while the threshold below it did not
    out = tmp_path / "sweep.json"
    assert live_accuracy.main(["--onnx", str(onnx_path), "--hagrid", str(root), "--hold", "6", "--settle", "2",
                               "--stable-frames", "2", "--hand-models", str(hand_models), "--sweep", "--store",
                               "--max-false-trigger", "0.5", "--json", str(out)]) == 0
    swept = json.loads(out.read_text())
    assert swept["resting_frames"] == 4 and swept["resting_lost"] == 0
    rates = {row["threshold"]: row["live_resting_triggered"] for row in swept["sweep"]}
    assert len(rates) == 13 and rates[0.3] > 0.5  # the lowest threshold misses the target: a real choice
    chosen = swept["chosen_threshold"]
    assert chosen > 0.3 and rates[chosen] <= 0.5 and rates[round(chosen - 0.05, 2)] > 0.5
    stored = load_predictor(onnx_path).info
    assert stored.reject_threshold == chosen
    # stored with the smoothing and stable frames the sweep ran under (the default smoothing, --stable-frames 2)
    assert (stored.live_smoothing, stored.live_stable_frames) == (swept["smoothing"], 2) == ("ema:0.5", 2)
    with pytest.raises(SystemExit) as exit_info:
        live_accuracy.main(["--onnx", str(onnx_path), "--images", str(tmp_path), "--store"])
    assert exit_info.value.code == 2


def test_smallest_threshold_within_the_false_trigger_rate():
    from rnn_jax.calibration import smallest_threshold_within

    rates = {0.3: 0.20, 0.4: 0.12, 0.5: 0.08, 0.6: 0.02}
    assert smallest_threshold_within(rates, 0.10) == 0.5
    assert smallest_threshold_within(rates, 0.25) == 0.3
    assert smallest_threshold_within(rates, 0.01) is None
    with pytest.raises(ValueError):
        smallest_threshold_within(rates, 1.0)


def test_a_missing_model_or_root_is_one_line_and_exit_2(tmp_path) -> None:
    """Errors go through main_guard like every other CLI: one line, exit 2, no traceback."""
    import subprocess
    import sys

    script = REPO / "tools" / "live_accuracy.py"
    done = subprocess.run([sys.executable, str(script), "--onnx", str(tmp_path / "missing.onnx"),
                           "--hagrid", str(tmp_path / "no-root")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error:"), done.stderr


def _frame(index, hands):
    from types import SimpleNamespace

    return SimpleNamespace(index=index, hands=[SimpleNamespace(hand=SimpleNamespace(landmarks=np.array([[x, y, 0.0]])),
                                                               label=label) for (x, y), label in hands])


def test_a_resting_hand_the_finder_misses_is_lost_not_quiet():
    """Two photos of one gesture hand (box left) and one resting hand (box right), 2 frames each,
    none skipped: the resting hand is found showing a gesture once, found quiet once and missed
    twice; the false-trigger rate is over the frames it was found (1 of 2), not over all 4."""
    from tools.live_checks.hagrid import _rates, _score, on_screen

    items = [(None, {"labels": ["like", "no_gesture"], "user": "p1"}),
             (None, {"labels": ["like", "no_gesture"], "user": "p2"})]
    boxes = [[(0, 0, 10, 10), (20, 0, 30, 10)]] * 2
    stream = [_frame(0, [((5, 5), "like"), ((25, 5), "like")]),  # resting hand triggers
              _frame(1, [((5, 5), "like"), ((25, 5), None)]),  # resting hand quiet
              _frame(2, [((5, 5), "palm")]),  # resting hand missed, gesture wrong
              _frame(3, [])]  # both missed
    counts, per_class, by_group = _score(on_screen(stream), items, boxes, hold=2, settle=0, known={"like", "palm"},
                                         groups=["A", "B"])
    assert counts["resting_frames"] == 4 and counts["resting_lost"] == 2 and counts["resting_triggered"] == 1
    assert counts["gesture_right"] == 2 and counts["gesture_wrong"] == 1 and counts["gesture_lost"] == 1
    rates = _rates(counts)
    assert rates["live_resting_triggered"] == 0.5 and rates["live_resting_lost"] == 0.5
    assert by_group["A"]["resting_triggered"] == 1 and by_group["B"]["resting_lost"] == 2
    assert per_class == {"like": [2, 4]}


def test_frames_a_paced_loop_never_saw_show_the_last_result():
    """--pace (a camera): frames that came while the loop was busy were dropped; each shows the record
    on screen then (the last one), up to the end of the video."""
    from types import SimpleNamespace

    from tools.live_checks.hagrid import on_screen

    source = SimpleNamespace(index=-1)
    positions = iter([0, 3, 4])  # the loop saw frames 0, 3 and 4 of 7

    def stream():
        for k in range(3):
            source.index = next(positions)
            yield f"record {k}"

    shown = list(on_screen(stream(), source, frames=7))
    assert shown == [(0, "record 0"), (1, "record 0"), (2, "record 0"), (3, "record 1"), (4, "record 2"),
                     (5, "record 2"), (6, "record 2")]
    assert list(on_screen(iter([SimpleNamespace(index=0), SimpleNamespace(index=1)])))[1][0] == 1


def test_the_live_threshold_chosen_on_one_half_is_reported_on_the_other():
    from tools.live_checks.hagrid import cross_fitted

    def row(t, a, b):
        return {"threshold": t, "by_half": {"A": {"live_resting_triggered": a, "live_gesture_right": 1 - t},
                                            "B": {"live_resting_triggered": b, "live_gesture_right": 1 - t}}}

    rows = [row(0.3, 0.20, 0.05), row(0.4, 0.08, 0.02), row(0.5, 0.0, 0.0)]
    fitted = cross_fitted(rows, 0.10)
    assert fitted["A"]["threshold"] == 0.3 and fitted["A"]["chosen_on"] == "B"  # B's rate is within at 0.3
    assert fitted["A"]["live_resting_triggered"] == 0.20  # ... and A is scored at it, over target
    assert fitted["B"]["threshold"] == 0.4 and fitted["B"]["live_gesture_right"] == pytest.approx(0.6)
    assert cross_fitted(rows, 0.0)["A"]["threshold"] == 0.5


@pytest.mark.shared
def test_the_people_of_hagrid_val_fall_in_two_halves_by_the_documented_rule():
    import collections

    from tests.conftest import shared_data
    from tools.live_checks.halves import person_half

    halves = {}
    for path in (shared_data("hagrid-sample") / "hagrid_annotations" / "val").glob("*.json"):
        for entry in json.loads(path.read_text()).values():
            halves[entry["user_id"]] = person_half(entry["user_id"])
    assert collections.Counter(halves.values()) == {"A": 63, "B": 54}  # docs/selection-and-headroom.md


def test_hand_search_reaches_the_hagrid_run(tmp_path, monkeypatch) -> None:
    """--hand-search is passed to run_hagrid, which builds the finder with it (as rnn_jax.live
    --hand-search), so each mode's HaGRID val figure is reproducible without editing HAND_SEARCH."""
    seen = []

    class Stop(Exception):
        pass

    def fake_run_hagrid(*args, hand_search=None, **kwargs):
        seen.append(hand_search)
        raise Stop

    monkeypatch.setattr(live_accuracy, "run_hagrid", fake_run_hagrid)
    for given in (["--hand-search", "light"], []):
        with pytest.raises(Stop):
            live_accuracy.main(["--onnx", str(tmp_path / "m.onnx"), "--hagrid", str(tmp_path), *given])
    assert seen == ["light", live_accuracy.DEFAULT_HAND_SEARCH]

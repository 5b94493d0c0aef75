"""ONNX export: every registry model, the parity gate, metadata, and the JAX-free runtime.

Models are tiny (8-16 px inputs, smallest presets) so the whole file stays well under two
minutes on two shared cores (ResNet-18/34 cost their eager weight initialisation, ~5-10 s).
Set RNN_JAX_SKIP_RESNET34=1 to leave out the largest one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from rnn_jax.errors import ModelFileError, RnnJaxError
from rnn_jax.export import (
    ExportError,
    ParityError,
    checked,
    export_checked,
    export_model,
    parity_check,
)
from rnn_jax.export.convert import value_info_conflicts
from rnn_jax.models.registry import LANDMARK_MODELS, PRESETS, ModelSpec, create_model
from rnn_jax.runtime import ModelInfo, Predictor

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("fist", "like", "ok", "peace")

# (name, size, image shape): the smallest input each architecture accepts cheaply
CASES = [
    ("mlp", "tiny", (8, 8, 1)),
    ("cnn", "tiny", (15, 15, 1)),  # odd side: the pooling drops the last row/column
    ("resnet", "tiny", (16, 16, 3)),
    ("vit", "tiny", (16, 16, 3)),
    ("resnet18", "default", (8, 8, 3)),
    ("resnet34", "default", (8, 8, 3)),
]
if os.environ.get("RNN_JAX_SKIP_RESNET34") == "1":
    CASES.pop()

# jax2onnx 0.17's own plugins use Flax's deprecated `.value`; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def info_for(shape: tuple[int, int, int], **overrides) -> ModelInfo:
    values = dict(class_names=CLASSES, input_size=shape[0], channels="GRAY" if shape[2] == 1 else "RGB",
                  crop_mode="hand", model_name="test", generation=3, val_accuracy=0.5, run_name="unit",
                  rnn_jax_version="0.1.0")
    return ModelInfo(**{**values, **overrides})


def images(shape: tuple[int, int, int], n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def make(name: str, size: str, shape: tuple[int, int, int], seed: int = 0):
    return create_model(ModelSpec(name, size), shape, len(CLASSES), seed=seed)


@pytest.fixture(scope="module")
def mlp_export(tmp_path_factory: pytest.TempPathFactory):
    """One exported MLP shared by the runtime/metadata tests (exporting is the slow part)."""
    shape = (8, 8, 1)
    model = make("mlp", "tiny", shape)
    path = export_model(model, shape, info_for(shape), tmp_path_factory.mktemp("mlp") / "mlp.onnx",
                        parity_images=images(shape))
    return model, shape, path


def test_every_registry_model_is_covered() -> None:
    skipped = {"resnet34"} if os.environ.get("RNN_JAX_SKIP_RESNET34") == "1" else set()
    skipped |= set(LANDMARK_MODELS)  # exported with explicit state: tests/test_landmarks.py
    assert set(PRESETS) <= {name for name, _, _ in CASES} | skipped


@pytest.mark.parametrize("name,size,shape", CASES, ids=[c[0] for c in CASES])
def test_registry_model_exports_and_passes_parity(tmp_path: Path, name: str, size: str, shape) -> None:
    model = make(name, size, shape)
    info = info_for(shape, model_name=name)
    result = export_checked(model, shape, info, tmp_path / "m.onnx", parity_images=images(shape))
    assert result.parity.passes(1e-4) and result.parity.n == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # one file: no sidecar, no temp
    proto = onnx.load(str(result.path), load_external_data=False)
    assert not any(onnx.external_data_helper.uses_external_data(t) for t in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "B"  # symbolic batch
    assert value_info_conflicts(proto) == []
    if name.startswith("resnet"):  # the known jax2onnx NHWC/NCHW value_info mix-up
        assert result.value_info_conflicts > 0
    predictor = Predictor.load(result.path, threads=1)
    assert predictor.info == info
    for batch in (1, 5):  # the symbolic batch really is dynamic
        assert predictor.predict(images(shape, batch, seed=1)).shape == (batch, len(CLASSES))


def test_metadata_round_trips(mlp_export) -> None:
    _, shape, path = mlp_export
    predictor = Predictor.load(path)
    assert predictor.class_names == CLASSES
    assert predictor.input_size == 8 and predictor.num_channels == 1 and predictor.info.channels == "GRAY"
    assert predictor.info.crop_mode == "hand" and predictor.info.generation == 3
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert ModelInfo.from_props(props) == info_for(shape)


def test_foreign_onnx_gets_a_clear_error(mlp_export, tmp_path: Path) -> None:
    proto = onnx.load(str(mlp_export[2]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelFileError, match="not an rnn-jax model"):
        Predictor.load(tmp_path / "foreign.onnx")


def test_runtime_classifies_without_jax(mlp_export, tmp_path: Path) -> None:
    model, shape, path = mlp_export
    batch = images(shape, 12, seed=2)
    np.save(tmp_path / "x.npy", batch)
    expected = np.asarray(model(batch.astype(np.float32))).argmax(1).tolist()
    code = (
        "import sys, json\n"
        "for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'jax2onnx'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        "import numpy as np\n"
        "from rnn_jax.runtime import Predictor\n"
        f"p = Predictor.load({str(path)!r}, threads=1)\n"
        f"probs = p.predict(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "print(json.dumps([p.class_names[i] for i in probs.argmax(1)]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [CLASSES[i] for i in expected]


def test_gate_refuses_a_disagreeing_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = (8, 8, 1)
    model, impostor = make("mlp", "tiny", shape, seed=0), make("mlp", "tiny", shape, seed=7)
    real = checked.to_onnx_proto
    monkeypatch.setattr(checked, "to_onnx_proto", lambda m, *a, **k: real(impostor, *a, **k))
    dest = tmp_path / "student.onnx"
    with pytest.raises(ParityError, match="parity gate refused") as err:
        export_model(model, shape, info_for(shape), dest, parity_images=images(shape))
    assert isinstance(err.value, RnnJaxError) and "nothing was written" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file is left behind


def test_gate_tolerance_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1e-3 bias shift keeps every top-1 but breaks the default 1e-4 logit tolerance."""
    shape = (8, 8, 1)
    model = make("mlp", "tiny", shape)
    real = checked.to_onnx_proto

    def nudged(*args, **kwargs):
        proto = real(*args, **kwargs)
        for t in proto.graph.initializer:
            if t.data_type == onnx.TensorProto.FLOAT and list(t.dims) == [len(CLASSES)]:
                t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t) + 1e-3, t.name))
        return proto

    monkeypatch.setattr(checked, "to_onnx_proto", nudged)
    dest = tmp_path / "student.onnx"
    dest.write_bytes(b"previous export")
    with pytest.raises(ParityError, match="left unchanged"):
        export_model(model, shape, info_for(shape), dest, parity_images=images(shape))
    assert dest.read_bytes() == b"previous export"
    result = export_checked(model, shape, info_for(shape), dest, parity_images=images(shape), tolerance=1e-2)
    assert 5e-4 < result.parity.max_abs_logit_diff < 1e-2 and result.parity.top1_agreement == 1.0


def test_parity_check_detects_a_different_model(mlp_export) -> None:
    _, shape, path = mlp_export
    other = make("mlp", "tiny", shape, seed=3)
    result = parity_check(other, path, images(shape))
    assert not result.passes() and result.max_abs_logit_diff > 1e-2


def test_metadata_must_match_the_model(tmp_path: Path) -> None:
    shape = (8, 8, 1)
    with pytest.raises(ExportError, match="metadata says 16px"):
        export_model(make("mlp", "tiny", shape), shape, info_for((16, 16, 1)), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# ------------------------------------------------------------------- whole run + CLI
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rnn_jax.api import DataSpec, RunConfig, TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "tiny"
    config = RunConfig(model=ModelSpec("mlp", "tiny"), gens=1,
                       train=TrainConfig(epochs=1, batch_size=64, max_train=512))
    train(config, DataSpec("builtin", image_size=16), out, progress=False)
    return out


@pytest.mark.slow
def test_export_run_end_to_end(tiny_run: Path, tmp_path: Path) -> None:
    from rnn_jax.export import export_run

    out = tmp_path / "student.onnx"
    report = export_run(tiny_run, out=out, int8=True, parity_images=64, latency_threads=(1,),
                        latency_repeats=2, calibration_images=64, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.int8.onnx", "student.onnx",
                                                         "student.onnx.json"]
    saved = json.loads((tmp_path / "student.onnx.json").read_text())
    assert saved["parity"]["passed"] and saved["parity"]["n"] == 64 and saved["generation"] == 0
    assert saved["info"]["class_names"] == list(report.info.class_names)
    assert saved["params"] > 0 and saved["gflops_per_image"] > 0 and saved["latency"][0]["p50_ms"] > 0
    fp32, int8 = Predictor.load(out), Predictor.load(tmp_path / "student.int8.onnx")
    # the int8 figures are the two shipped files' own, on every validation image of the run
    from rnn_jax.api import Lineage

    lineage = Lineage(tiny_run)
    val = lineage.dataset().val
    fp32_pred, int8_pred = fp32.predict(val.images).argmax(1), int8.predict(val.images).argmax(1)
    q = saved["int8"]
    assert q["n_eval"] == len(val.labels) and q["calibration_images"] == 64
    assert q["fp32_acc"] == pytest.approx(float(np.mean(fp32_pred == val.labels)), abs=1e-9)
    assert q["fp32_acc"] == pytest.approx(lineage.generations[0]["val_acc"], abs=1e-9)  # = JAX's own score
    assert q["int8_acc"] == pytest.approx(float(np.mean(int8_pred == val.labels)), abs=1e-9)
    assert q["agreement"] == pytest.approx(float(np.mean(int8_pred == fp32_pred)), abs=1e-9)
    assert q["agreement"] >= 0.95 and abs(q["int8_acc"] - q["fp32_acc"]) <= 0.03
    assert fp32.info == int8.info and fp32.info.input_size == 16 and fp32.info.channels == "RGB"
    assert fp32.info.crop_mode == "hand" and fp32.info.run_name == "tiny"
    table = report.table()
    for needle in ("parameters", "GFLOPs", "file size", "p50 / p95", "max |Δlogit|", "speed-up"):
        assert needle in table
    # the summary says what the stored temperature did to validation ECE (or why none is stored)
    assert saved["calibration"] and f"calibration: {saved['calibration']}" in table


@pytest.mark.slow
def test_cli_refuses_and_writes_nothing(tiny_run: Path, tmp_path: Path) -> None:
    """An impossible tolerance makes the gate refuse: exit 2, one 'error:' line, no file."""
    out = tmp_path / "student.onnx"
    cmd = [sys.executable, str(REPO / "tools" / "export_onnx.py"), "--run", str(tiny_run), "--out", str(out),
           "--tolerance", "1e-12", "--parity-images", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: parity gate refused")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_finds_the_newest_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import export_onnx
    finally:
        sys.path.remove(str(REPO / "tools"))
    with pytest.raises(RnnJaxError, match="no runs found"):
        export_onnx.newest_run(tmp_path / "runs")
    for i, name in enumerate(("b-old", "a-new")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "lineage.json").write_text("{}")
        os.utime(tmp_path / "runs" / name / "lineage.json", (1e9 + i, 1e9 + i))
    assert export_onnx.newest_run(tmp_path / "runs").name == "a-new"
    help_text = subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    for flag in ("--run", "--gen", "--out", "--int8", "--tolerance", "--parity-images", "--debug"):
        assert flag in help_text

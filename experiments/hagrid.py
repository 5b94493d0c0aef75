"""Self-distilled hand-gesture classifiers on HaGRID (or your own gesture folders).

    python -m experiments.hagrid --gens 5                       # built-in demo data if no HaGRID
    python -m experiments.hagrid --data ../shared/data/hagrid-sample   # real HaGRID: landmark model
    python -m experiments.hagrid --data ../shared/data/hagrid-sample --family image --crop hand
    python -m experiments.hagrid --data ~/hagrid-sample-30k-384p --crop hand
    python -m experiments.hagrid --data ../shared/data/sign-language-digits --gens 3
    python -m experiments.hagrid --data my_gestures --init-from runs/hagrid-... --gens 2

--data accepts every HaGRID layout (v2 / 512p, the 30k-sample mirror, v1) and plain class
folders. Without --data: ./data/hagrid, then $RNN_JAX_DATA; if neither exists, a small
built-in gesture set drawn by rnn-jax itself is used (clearly a demo, not HaGRID).
Presets (--preset cpu|gpu) pick model, input size and epochs for the device; any flag you
pass explicitly wins over the preset.

Model family (--family): on every HaGRID layout (v2 / 512p, the 30k mirror, v1, the sample's
parts) the default is **landmarks**: every hand becomes 21 landmarks once (the annotations'
own landmarks where they have them, else the hand finder; cached by content, resumable, spread
over this machine's cores or a Dask cluster: rnn_jax/data/hagrid/) and a small landmark model
(lmlp) learns every gesture of the annotations + no_gesture; it beat hand-crop images on unseen
people's photos (docs/hagrid.md). --family image trains on pixels instead (class folders and
the built-in demo always do). Extraction alone, sharded over machines:
python -m rnn_jax.data.hagrid --data ROOT --shard K/N.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from experiments.common import check_before_data, default_out, run_experiment
from experiments.flags import add_common_flags
from rnn_jax.data.hagrid.layout import resolve_layout
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.errors import main_guard
from rnn_jax.presets import PRESETS, RECIPES, Preset, preset_name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.hagrid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None,
                      help="HaGRID root or class folders (default ./data/hagrid, then $RNN_JAX_DATA, "
                           "else the built-in demo set)")
    data.add_argument("--crop", choices=("full", "hand"), default="full",
                      help="full: whole frames, letterboxed (matches a webcam view); hand: square crops "
                           "around the gesture box (HaGRID annotations; plain class folders: boxes found once by "
                           "rnn_jax.hands, see README 'Finding the hand'; live uses --hands)")
    data.add_argument("--image-size", type=int, default=None, help="square input side (default from --preset)")
    data.add_argument("--image-storage", choices=("auto", "cache", "stream"), default="auto",
                      help="image family: cache = decode every photo once into the decoded cache, stream = decode "
                           "JPEGs while training in grain worker processes ($RNN_JAX_STREAM_WORKERS, default one "
                           "per core); auto caches when the decoded set fits in half the RAM and disk (default "
                           "%(default)s; docs/hagrid.md)")
    data.add_argument("--no-gesture", nargs="?", choices=("auto", "on", "off"), default="auto", const="on",
                      help="HaGRID's no_gesture (resting) hands as a class: on (also plain --no-gesture) or off; "
                           "auto (default): on for the landmark family and for parts roots (crops/photos), off for "
                           "the image family on annotated photos")
    gpu, cpu = PRESETS["gpu"], PRESETS["cpu"]
    lm, lm_gpu = PRESETS["landmarks"], PRESETS["landmarks-gpu"]
    data.add_argument("--preset", choices=("cpu", "gpu"), default=None,
                      help=f"defaults for the device (rnn_jax/presets.py): image family gpu = ResNet-18 "
                           f"@{gpu.image_size} batch {gpu.batch_size}, cpu = {cpu.model}-{cpu.size} @{cpu.image_size} "
                           f"batch {cpu.batch_size}; landmark family gpu = {lm_gpu.model}-{lm_gpu.size} batch "
                           f"{lm_gpu.batch_size}, cpu = {lm.model}-{lm.size} batch {lm.batch_size} (default: chosen "
                           "from the device JAX sees)")
    data.add_argument("--family", choices=("auto", "landmarks", "image"), default="auto",
                      help="what the model reads: landmarks (21 hand landmarks from the hand finder) or image "
                           "(pixels); auto = landmarks on HaGRID roots with crops/photos/annotations, image "
                           "for class folders and the built-in demo (default %(default)s)")
    from rnn_jax.data.hagrid.cli import add_extraction_flags

    add_extraction_flags(parser)
    data.add_argument("--init-from", default=None, metavar="RUN",
                      help="start generation 0 from a finished run's student (fine-tune to your own hands)")
    # None: from the preset (augment by family: basic for images, strong (+ dropped points) for landmarks)
    add_common_flags(parser, **RECIPES["hagrid"],
                     help={"augment": "augmentation: basic = shift+flip (landmarks: rotation, scale, jitter), strong "
                                      "= + colour + cutout (landmarks: + dropped points) (default from --preset: "
                                      f"{cpu.augment} for images, {lm.augment} for landmarks)"})
    return parser


def find_data(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (Path("data/hagrid"), os.environ.get("RNN_JAX_DATA")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def choose_family(args: argparse.Namespace, data_path: Path | None) -> str:
    """landmarks or image (see --family); landmarks needs a HaGRID root and the hand models."""
    from rnn_jax.errors import ConfigError

    # resolve_layout, not looks_like_hagrid: a folder that mixes layouts must say so, not fall to images
    hagrid_root = data_path is not None and data_path.is_dir() and resolve_layout(data_path).kind != "folders"
    if args.family == "image" or (args.family == "auto" and not hagrid_root):
        return "image"
    if not hagrid_root:
        raise ConfigError("--family landmarks needs a HaGRID root (any layout: annotations/ or "
                          "hagrid_annotations/, ann_train_val/, crops_train/ or photos_train/); for your own photos "
                          "use tools/extract_landmarks.py and python -m experiments.landmarks")
    from rnn_jax.hands.models import models_present

    if not models_present():
        raise ConfigError("the landmark family needs the hand models: build them once with "
                          "`python tools/build_hand_models.py` (or pass --family image)")
    return "landmarks"


def _layout_kind(path: Path) -> str:
    return resolve_layout(path).kind


def choose_preset(args: argparse.Namespace, data_path: Path | None, family: str = "image") -> Preset:
    """An explicit --preset always wins (for the landmark family, its landmark preset for that
    device); otherwise the demo preset for the built-in data, else the device JAX sees."""
    if args.preset:
        return PRESETS[preset_name(family, args.preset)]
    if data_path is None:
        return PRESETS["demo"]
    import jax

    return PRESETS[preset_name(family, "gpu" if jax.default_backend() == "gpu" else "cpu")]


def apply_preset(args: argparse.Namespace, preset: Preset) -> None:
    """Fill every flag the user left out from the preset (explicit flags win; an explicit --epochs
    keeps the students' default of twice that). A preset without flips (the landmark family's: the
    feature rule mirrors left hands) turns them off whatever the flags say."""
    if args.epochs is None and args.student_epochs is None:
        args.student_epochs = preset.student_epochs
    for key in ("model", "size", "image_size", "epochs", "batch_size", "lr", "augment"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(preset, key))
    if not preset.flip:
        args.no_flip = True


def wants_no_gesture(args: argparse.Namespace, family: str, path: Path | None) -> bool:
    """Resolve --no-gesture (see its help). The image family on a parts root always has the class
    (rnn_jax/data/hagrid/parts_images.py builds its images from the landmark sets' hands), so
    ``off`` there is refused rather than ignored."""
    from rnn_jax.errors import ConfigError

    parts = path is not None and path.is_dir() and _layout_kind(path) == "parts"
    if args.no_gesture != "auto":
        if args.no_gesture == "off" and parts and family == "image":
            raise ConfigError("--no-gesture off: the image family on a parts root (crops/photos) always keeps "
                              "no_gesture hands; use the landmark family (the default) to leave them out")
        return args.no_gesture == "on"
    return family == "landmarks" or parts


def data_spec(args: argparse.Namespace, path: Path | None) -> DataSpec:
    """What to load (validates --image-size and --crop; reads nothing)."""
    if path is None:
        return DataSpec("builtin", image_size=args.image_size, seed=args.seed)
    return DataSpec("hagrid", path=str(path.resolve()), image_size=args.image_size, crop=args.crop,
                    image_storage=args.image_storage,
                    no_gesture=wants_no_gesture(args, "image", path), seed=args.seed)


def build_data(args: argparse.Namespace):
    spec = data_spec(args, find_data(args.data))
    return spec, load_dataset(spec, progress=not args.no_progress)


def build_landmark_data(args: argparse.Namespace):
    """Any HaGRID layout -> landmark files (extracted once, cached by content), then the landmark Dataset."""
    from rnn_jax.data.hagrid.cli import engine_from_args
    from rnn_jax.data.hagrid.prepare import describe, prepare_landmarks

    engine = engine_from_args(args)
    try:
        path = find_data(args.data)
        folder = prepare_landmarks(path, seed=args.seed, no_gesture=wants_no_gesture(args, "landmarks", path),
                                   progress=not args.no_progress, engine=engine)
    finally:
        getattr(engine, "close", lambda: None)()
    print(describe(folder))
    spec = DataSpec("landmarks", path=str(folder), seed=args.seed, mirror_left=True)
    return spec, load_dataset(spec, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from rnn_jax.distributed import initialize_from_env

    initialize_from_env()  # join a multi-host job before anything asks JAX for devices
    data_path = find_data(args.data)
    family = choose_family(args, data_path)
    preset = choose_preset(args, data_path, family)
    apply_preset(args, preset)
    if args.preset or family == "landmarks":
        name = next(k for k, v in PRESETS.items() if v is preset)
        print(f"preset: {name} ({preset.model}-{preset.size}, batch {preset.batch_size}, {preset.epochs} epochs; "
              "explicit flags win)")
    if family != "landmarks":
        if data_path is not None and args.crop == "full" and _layout_kind(data_path) == "parts":
            print("HaGRID parts (hand crops, unannotated photos) train the image family on hand crops: --crop hand")
            args.crop = "hand"
        data_spec(args, data_path)  # the whole configuration is checked before the data is announced or loaded
    out = Path(args.out) if args.out else default_out("hagrid")
    args.out = str(out)
    config = check_before_data(args, out, init_from=args.init_from)
    if data_path is None:
        print("No HaGRID found (--data, ./data/hagrid, $RNN_JAX_DATA): using rnn-jax's BUILT-IN DEMO gestures. "
              "Get HaGRID with `python tools/download_hagrid.py` or pass --data.")
    if family == "landmarks":
        print(f"model family: landmarks ({args.model} {args.size}; --family image trains on pixels)")
    run_experiment(args, "hagrid", build_landmark_data if family == "landmarks" else build_data,
                   init_from=args.init_from, config=config)


if __name__ == "__main__":
    main_guard(main)

"""Born-again lineages of landmark gesture models (21 hand landmarks per frame, not pixels).

    python -m experiments.landmarks                                  # built-in synthetic hands
    python -m experiments.landmarks --data landmarks/sld --model lstm --size tiny
    python -m experiments.landmarks --data ~/hagrid-sample-30k-384p   # HaGRID annotations, no images read
    python -m experiments.landmarks --data hands.npz --model trm --teacher-heads final

--data takes a folder with train.npz and val.npz (+ test.npz), one .npz (split by person), or a
HaGRID root (its annotations' landmarks are read; no image is decoded). Make .npz files from
photos or videos with `python tools/extract_landmarks.py`. Without --data a small built-in
set of synthetic hands is used (a demo, not real data).

Models: lmlp (per-frame MLP), lstm (tiny ... xxlarge), trm (stateful tiny recursive model with
deep supervision; --teacher-heads says which of its heads the teacher reaches). The trm trains
on photos played as a stream by default (--streams auto; off: single photos from a zero
state), its state carried from another class's photo into the next (truncated BPTT;
rnn_jax/data/streams.py) as the live loop carries it. Features:
wrist-relative, scale-normalised, left hands mirrored (rnn_jax/hands/features.py);
augmentation: rotation, scale, jitter (basic), + dropped points (strong), mirroring (--flip).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import check_before_data, default_out, run_experiment
from experiments.flags import add_common_flags, add_field_flag, run_config_from_args
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.data.streams import StreamLayout
from rnn_jax.errors import main_guard
from rnn_jax.presets import RECIPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.landmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None,
                      help="train.npz/val.npz folder, one .npz, or a HaGRID root (default: built-in synthetic hands)")
    data.add_argument("--no-mirror", action="store_true",
                      help="keep left hands as they are (default: mirror them to right hands)")
    data.add_argument("--flip", dest="no_flip", action="store_false",
                      help="mirror half the training examples (off by default: mirroring is left to the features)")
    data.add_argument("--window", type=int, default=0, metavar="T",
                      help="video frames -> windows of T consecutive frames; lstm/trm then train by "
                           "back-propagation through time over each window (default %(default)s: single frames)")
    data.add_argument("--streams", choices=("auto", "on", "off"), default="auto",
                      help="trm: train on photos played as a stream (each held --stream-hold frames after a "
                           "photo of another class; loss on the first frame from a zero state and on every "
                           "frame after --stream-settle with the carried state: truncated BPTT, the state "
                           "trained as live uses it; rnn_jax/data/streams.py). auto (default): on for the "
                           "trm without --window, off otherwise. Costs several times the training time of "
                           "single photos (docs/landmarks.md)")
    data.add_argument("--stream-hold", type=int, default=StreamLayout.hold, metavar="F",
                      help="--streams: frames each photo is held (default %(default)s; tools/live_accuracy.py "
                           "holds photos longer: a state settles within a few frames of a held photo)")
    data.add_argument("--stream-settle", type=int, default=StreamLayout.settle, metavar="F",
                      help="--streams: frames after a change without a loss (default %(default)s)")
    add_field_flag(data, "distill.teacher_heads")
    add_common_flags(parser, **RECIPES["landmarks"])  # defaults: rnn_jax/presets.py
    return parser


def data_spec(args: argparse.Namespace) -> DataSpec:
    path = None if args.data is None else str(Path(args.data).expanduser().resolve())
    if args.window < 0:
        from rnn_jax.errors import ConfigError

        raise ConfigError(f"--window must be >= 0, got {args.window}")
    return DataSpec("landmarks", path=path, seed=args.seed, mirror_left=not args.no_mirror, window=args.window)


def stream_layout(args: argparse.Namespace):
    """The --streams layout, or None (checked before any data is read)."""
    if args.streams == "off" or (args.streams == "auto" and (args.model != "trm" or args.window)):
        return None
    from rnn_jax.errors import ConfigError, DataError

    if args.model != "trm":
        raise ConfigError(f"--streams trains a carried state with a loss on several frames: --model trm "
                          f"(got {args.model})")
    if args.window:
        raise ConfigError("--window (video windows) and --streams (photos played as a stream) exclude each other")
    try:
        return StreamLayout(hold=args.stream_hold, settle=args.stream_settle)
    except DataError as exc:
        raise ConfigError(str(exc).replace("stream hold", "--stream-hold").replace("stream settle", "--stream-settle")
                          ) from None


def build_data(args: argparse.Namespace):
    spec = data_spec(args)
    layout = stream_layout(args)
    if layout is None:
        return spec, load_dataset(spec, progress=not args.no_progress)
    from rnn_jax.data.landmark_dataset import landmark_dataset

    return spec, landmark_dataset(spec.path, seed=spec.seed, mirror_left=spec.mirror_left, streams=layout)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from rnn_jax.errors import ConfigError
    from rnn_jax.models.registry import LANDMARK_MODELS

    if args.model not in LANDMARK_MODELS:
        raise ConfigError(f"--model {args.model} takes images; landmark models are {', '.join(LANDMARK_MODELS)}")
    if args.cutmix:
        raise ConfigError("--cutmix cuts image rectangles; landmark features take --mixup instead")
    out = Path(args.out) if args.out else default_out("landmarks")
    args.out = str(out)
    layout = stream_layout(args)
    config = None
    if layout is not None:  # the trm learns from the layout's loss frames
        import dataclasses

        config = run_config_from_args(args)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, loss_frames=layout.loss_frames))
    config = check_before_data(args, out, config=config)
    if args.data is None:
        print("No --data: using rnn-jax's BUILT-IN synthetic hand landmarks (a demo). Extract real ones with "
              "`python tools/extract_landmarks.py`.")
    run_experiment(args, "landmarks", build_data, config=config)


if __name__ == "__main__":
    main_guard(main)

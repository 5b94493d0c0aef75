"""Where the second look's tiles find hands the whole frame misses, against the largest face in view.

    python tools/near_face.py --photos ../shared/data/hagrid-sample/photos_train --count 500

Why: the live finder's budget skips a new scene's tiles when a face at least
``FinderConfig.near_face`` of the frame's long side is in view and the whole-frame look
finds no hand (a person near the camera has hands big enough for the whole frame). This
prints, per face-size bar, how many photos reach it and how many hands only a tile found
in them (labels are not used: any hand the finder accepts counts), so the bar is chosen on
photos other than the HaGRID val photos that ``tools/live_accuracy.py --hagrid`` reports on.
Each photo is letterboxed into a 640 px frame, as that check does. Exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from rnn_jax.atomic import write_json_atomic  # noqa: E402
from rnn_jax.errors import DataError, main_guard  # noqa: E402
from rnn_jax.preprocess import letterbox  # noqa: E402

BARS = (0.15, 0.17, 0.18, 0.2, 0.22, 0.25)
FRAME = 640


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos (searched recursively, *.jpg)")
    parser.add_argument("--count", type=int, default=500, help="photos drawn (seed 0), default 500")
    parser.add_argument("--hand-models", type=Path, default=None, help="hand model folder (default: the cache)")
    parser.add_argument("--json", type=Path, default=None, help="write per-photo rows and the table here")
    return parser


def tile_only_hands(finder, rgb: np.ndarray) -> int:
    """Hands the finder accepts with every tile looked at that the whole-frame look alone missed."""
    finder.reset()
    whole = finder.find(rgb, colour="rgb", tiles="none")
    finder.reset()
    every = finder.find(rgb, colour="rgb", tiles="all")
    finder.reset()

    def seen(hand) -> bool:
        x, y, w, h = hand.box
        return any(abs(x + w / 2 - o.box[0] - o.box[2] / 2) < w / 2 and abs(y + h / 2 - o.box[1] - o.box[3] / 2) < h / 2
                   for o in whole)

    return sum(not seen(hand) for hand in every)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.photos.is_dir():
        raise DataError(f"--photos {args.photos} is not a folder")
    if args.count < 1:
        raise DataError(f"--count must be >= 1, got {args.count}")
    photos = sorted(args.photos.rglob("*.jpg"))
    if not photos:
        raise DataError(f"no .jpg photos under {args.photos}")
    random.Random(0).shuffle(photos)
    from rnn_jax.hands import HandFinder

    finder = HandFinder.load(args.hand_models, threads=1)
    if finder.face_session is None:
        raise DataError("the hand model folder has no face model; rebuild it with `python tools/build_hand_models.py --force`")
    rows = []
    for k, path in enumerate(photos[: args.count], 1):
        image = cv2.imread(str(path))
        if image is None:
            continue
        rgb = cv2.cvtColor(letterbox(image, FRAME), cv2.COLOR_BGR2RGB)
        face = max((float(b[2]) for b in finder.detect_faces(rgb)), default=0.0) / FRAME
        rows.append({"photo": str(path), "largest_face": round(face, 4), "tile_only_hands": tile_only_hands(finder, rgb)})
        if k % 50 == 0:
            print(f"{k} photos", file=sys.stderr, flush=True)
    faces = np.array([r["largest_face"] for r in rows])
    only = np.array([r["tile_only_hands"] for r in rows])
    table = [{"bar": bar, "photos": int((faces >= bar).sum()), "tile_only_hands": int(only[faces >= bar].sum())}
             for bar in BARS]
    print(f"{len(rows)} photos, {int((faces > 0).sum())} with a face; hands only a tile found: {int(only.sum())}")
    print("| largest face >= (share of the long side) | photos | hands only a tile found in them |")
    print("|---|---:|---:|")
    for row in table:
        print(f"| {row['bar']:.2f} | {row['photos']} | {row['tile_only_hands']} |")
    if args.json:
        write_json_atomic(args.json, {"rows": rows, "table": table})
    return 0


if __name__ == "__main__":
    main_guard(main)

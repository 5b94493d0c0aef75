"""The one HaGRID layout resolver: which layout a folder holds, and where its parts are.

Layouts (``../shared/docs/hagrid-layouts.md``; the names are what ``HagridLayout.kind`` says):

- ``"v2"``: HaGRIDv2, full or 512p: ``hagrid_dataset/<gesture>/<id>.jpg`` +
  ``hagrid_annotations/{train,val,test}/<gesture>.json``; the annotation folder may be called
  ``annotations`` (what ``tools/download_hagrid.py`` writes) and may sit one folder deeper.
- ``"sample30k"``: the 30k-384p mirror of v1: ``hagrid-sample-30k-384p/hagrid_30k/train_val_<g>/``
  + ``hagrid-sample-30k-384p/ann_train_val/<g>.json`` (the outer or inner folder as root).
- ``"v1"``: HaGRID v1 full: ``train_val_<g>/``, ``ann_train_val/<g>.json`` and optionally
  ``test/<g>/`` + ``ann_test/<g>.json``.
- ``"parts"``: what ``../shared/data/hagrid-sample`` holds: tight hand crops (``crops_train/``),
  unannotated whole photos (``photos_train/``), and optionally annotated v2 splits beside them.
- ``"folders"``: plain class folders (no annotations, no person ids).

A folder that holds two annotated layouts at once (say ``ann_train_val/`` beside
``hagrid_annotations/``) is refused: which one is meant cannot be guessed, and reading both
would count people twice. Images are matched to annotations by file stem wherever they sit
under the root, so archives that unpack one folder deeper still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rnn_jax.data.folders import IMAGE_EXTENSIONS, natural_key
from rnn_jax.errors import DataError

KINDS = ("v2", "sample30k", "v1", "parts", "folders")
SAMPLE30K_DIR = "hagrid-sample-30k-384p"
V2_ANNOTATION_DIRS = ("hagrid_annotations", "annotations")
CROP_DIRS = ("crops_train", "crops")
PHOTO_DIRS = ("photos_train", "photos")
V2_POOLS = ("train", "val", "test")


@dataclass(frozen=True)
class HagridLayout:
    """Where one HaGRID root's parts are. ``pools`` maps a pool ("train", "val", "test", or
    "trainval" = to be split by person) to its gesture JSON files."""

    kind: str
    root: Path  # the folder the layout is relative to (images are looked up under it)
    pools: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    crops: Path | None = None
    photos: Path | None = None

    @property
    def annotated(self) -> bool:
        return bool(self.pools)

    @property
    def annotation_dirs(self) -> set[Path]:
        return {f.parent for files in self.pools.values() for f in files}

    def describe(self) -> str:
        parts = [f"{pool} ({len(files)} gesture files)" for pool, files in self.pools.items()]
        parts += [f"{name} {path.name}/" for name, path in (("crops", self.crops), ("photos", self.photos)) if path]
        return f"HaGRID layout {self.kind} at {self.root}: " + (", ".join(parts) or "class folders")


def ann_dir_v2(root: Path) -> Path | None:
    """The folder holding {train,val,test}/<gesture>.json (also when an archive nested it once)."""
    found = _v2_annotation_dirs(root)
    return found[0] if found else None


def _v2_annotation_dirs(root: Path) -> list[Path]:
    tops = [root / name for name in V2_ANNOTATION_DIRS if (root / name).is_dir()]
    nested = [d for top in tops for d in sorted(top.iterdir()) if d.is_dir() and d.name not in V2_POOLS]
    return [cand for cand in tops + nested if _has_pool_json(cand)]


def _has_pool_json(folder: Path) -> bool:
    return any(next((folder / s).glob("*.json"), None) for s in V2_POOLS if (folder / s).is_dir())


def _json_files(folder: Path) -> tuple[Path, ...]:
    if not folder.is_dir():
        return ()
    return tuple(sorted((p for p in folder.glob("*.json") if not p.name.startswith(".")),
                        key=lambda p: natural_key(p.name)))


def _v1_base(root: Path) -> Path | None:
    candidates = [root, root / SAMPLE30K_DIR] + ([root.parent] if root.name == "hagrid_30k" else [])
    return next((c for c in candidates if (c / "ann_train_val").is_dir()), None)


def _looks_like_folders(root: Path) -> bool:
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            if d.name.lower() in ("train", "training"):
                return True
            if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir() if p.is_file()):
                return True
    return False


def resolve_layout(root: str | Path) -> HagridLayout:
    """The layout under ``root`` (DataError with what was expected when there is none, or when the
    folder mixes two annotated layouts)."""
    root = Path(root).expanduser().resolve()  # absolute: relative paths below are from one place
    if not root.is_dir():
        raise DataError(f"HaGRID folder {root} does not exist; check the path or download it with "
                        "`python tools/download_hagrid.py`")
    v2_dirs = _v2_annotation_dirs(root)
    v1_base = _v1_base(root)
    crops = next((root / d for d in CROP_DIRS if (root / d).is_dir()), None)
    photos = next((root / d for d in PHOTO_DIRS if (root / d).is_dir()), None)
    found = ([f"{d.relative_to(root)}/ (v2 annotations)" for d in v2_dirs]
             + ([f"{v1_base.relative_to(root) if v1_base != root.parent else '..'}/ann_train_val/ (v1 annotations)"]
                if v1_base else []))
    if len(found) > 1 or (v1_base and (crops or photos)):
        extra = [f"{p.name}/ (sample parts)" for p in (crops, photos) if p] if v1_base else []
        raise DataError(f"{root} mixes HaGRID layouts ({', '.join(found + extra)}); keep one per folder "
                        "and pass that folder as --data")
    if v1_base is not None:
        kind = "sample30k" if (v1_base / "hagrid_30k").is_dir() or v1_base.name == SAMPLE30K_DIR else "v1"
        pools = {pool: files for pool, name in (("trainval", "ann_train_val"), ("test", "ann_test"))
                 if (files := _json_files(v1_base / name))}
        if not pools:
            raise DataError(f"{v1_base / 'ann_train_val'} holds no annotation JSON; the annotations "
                            "archive is missing or unpacked elsewhere")
        return HagridLayout(kind, v1_base, pools)
    pools = {}
    if v2_dirs:
        pools = {pool: files for pool in V2_POOLS if (files := _json_files(v2_dirs[0] / pool))}
    if crops or photos:
        return HagridLayout("parts", root, pools, crops, photos)
    if pools:
        return HagridLayout("v2", root, pools)
    if _looks_like_folders(root):
        return HagridLayout("folders", root)
    raise DataError(f"{root} is not a HaGRID layout nor plain class folders: expected "
                    "hagrid_dataset/ + hagrid_annotations/ (or annotations/), ann_train_val/ + "
                    "train_val_<gesture>/, crops_train/ or photos_train/, or <class>/*.jpg folders")


def detect_hagrid_layout(root: str | Path) -> str:
    """Which layout ``root`` holds: one of :data:`KINDS` (DataError if none)."""
    return resolve_layout(root).kind


def looks_like_hagrid(path: str | Path) -> bool:
    """True when ``path`` is a HaGRID root (any layout but plain class folders)."""
    try:
        return resolve_layout(path).kind != "folders"
    except DataError:
        return False

"""Resumable HaGRID downloads and safe archive extraction (stdlib only: urllib, zipfile, tarfile).

The URL tables below are copied from the HaGRID project's README
(https://github.com/hukenovs/hagrid) and from the Hugging Face mirror of the 30k sample.
Hosts move: if a download answers 404 or the host is gone, check the README and edit the
table here (it is plain data, one line per archive).

- ``sample30k``: ``cj-mills/hagrid-sample-30k-384p`` on Hugging Face (one zip, ~30k images,
  shorter side 384 px) -> layout ``hagrid-sample-30k-384p/{hagrid_30k,ann_train_val}``.
- ``v2``: HaGRIDv2 (34 classes, FullHD, ~40 GB per gesture) per-gesture zips + the
  annotations zip, from the current README -> ``hagrid_dataset/<gesture>/`` +
  ``annotations/{train,val,test}/``.
- ``v1``: the 2022 HaGRID release (``train_val_<gesture>.zip`` + ``ann_train_val.zip``),
  from an older README revision; that host may have been retired since (the v1 gestures
  are also part of v2, whose links are current).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rnn_jax.errors import DataError, RnnJaxError

USER_AGENT = "rnn-jax-downloader/1.0 (+https://github.com/hukenovs/hagrid)"
CHUNK = 1 << 20

HF_SAMPLE30K = ("https://huggingface.co/datasets/cj-mills/hagrid-sample-30k-384p/"
                "resolve/main/hagrid-sample-30k-384p.zip")
_V2_OLD = "https://rndml-team-cv.obs.ru-moscow-1.hc.sbercloud.ru/datasets/hagrid/hagrid_dataset_new_554800/hagrid_dataset/"
_V2_NEW = "https://rndml-team-cv.obs.ru-moscow-1.hc.sbercloud.ru/datasets/hagrid_v2/hagrid_v2_zip/"
V2_ANNOTATIONS = ("https://rndml-team-cv.obs.ru-moscow-1.hc.sbercloud.ru/datasets/hagrid_v2/"
                  "annotations_with_landmarks/annotations.zip")
V1_BASE = "https://n-usr-2uzac.s3pd12.sbercloud.ru/b-usr-2uzac-mv4/hagrid/"

V1_GESTURES = ("call", "dislike", "fist", "four", "like", "mute", "ok", "one", "palm", "peace",
               "peace_inverted", "rock", "stop", "stop_inverted", "three", "three2", "two_up",
               "two_up_inverted")
V2_GESTURES = V1_GESTURES + ("grabbing", "grip", "hand_heart", "hand_heart2", "holy",
                             "little_finger", "middle_finger", "point", "take_picture",
                             "three3", "three_gun", "thumb_index", "thumb_index2", "timeout",
                             "xsign", "no_gesture")

# HaGRIDv2 README table: gesture -> archive URL (the 18 v1 gestures sit in the older folder,
# except one and rock, which the README links from the v2 folder).
V2_URLS: dict[str, str] = {
    g: (_V2_NEW if g in ("one", "rock") or g not in V1_GESTURES else _V2_OLD) + f"{g}.zip"
    for g in V2_GESTURES
}
# Sizes the README states (GB, rounded): shown before a download, not used as a check.
V2_SIZES_GB: dict[str, float] = {
    "call": 37.2, "dislike": 40.9, "fist": 42.3, "four": 43.1, "like": 42.2, "mute": 43.2,
    "ok": 42.5, "one": 42.7, "palm": 43.0, "peace": 41.4, "peace_inverted": 40.5, "rock": 41.7,
    "stop": 41.8, "stop_inverted": 41.4, "three": 42.2, "three2": 40.2, "two_up": 41.8,
    "two_up_inverted": 40.9, "grabbing": 48.7, "grip": 48.6, "hand_heart": 39.6,
    "hand_heart2": 42.6, "holy": 52.7, "little_finger": 48.6, "middle_finger": 50.5,
    "point": 50.4, "take_picture": 37.3, "three3": 54.0, "three_gun": 50.1,
    "thumb_index": 62.8, "thumb_index2": 24.8, "timeout": 39.5, "xsign": 51.3, "no_gesture": 0.5,
}
V1_URLS: dict[str, str] = {g: f"{V1_BASE}train_val_{g}.zip" for g in V1_GESTURES}
V1_EXTRA: dict[str, str] = {"ann_train_val": f"{V1_BASE}ann_train_val.zip",
                            "test": f"{V1_BASE}test.zip", "ann_test": f"{V1_BASE}ann_test.zip"}
SUBSETS = ("sample30k", "v1", "v2")


class DownloadError(RnnJaxError):
    """A download failed (network, HTTP status, size or checksum); the message is one line."""


@dataclass(frozen=True)
class Asset:
    """One archive to fetch and unpack under ``<out>/<extract_to>``."""

    name: str
    url: str
    extract_to: str = "."  # folder under --out
    top: str | None = None  # folder the archive should unpack to (added when it has none)
    size: int | None = None  # exact bytes, when known: checked
    sha256: str | None = None  # when known: checked
    approx_gb: float | None = None  # for the plan shown to the user
    members: Callable[[str], bool] | None = None  # extract only members passing this filter
    tag: str = ""  # distinguishes partial extractions (e.g. a gesture subset) in the done-marker


def plan(subset: str, gestures: Iterable[str] | None = None, test: bool = False) -> list[Asset]:
    """The archives for a subset (and gesture list); raises DataError for unknown names."""
    if subset not in SUBSETS:
        raise DataError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    known = {"sample30k": V1_GESTURES, "v1": V1_GESTURES, "v2": V2_GESTURES}[subset]
    chosen = list(gestures) if gestures else list(known)
    unknown = [g for g in chosen if g not in known]
    if unknown:
        raise DataError(f"unknown gesture {unknown[0]!r} for {subset}; known: {', '.join(known)}")
    if subset == "sample30k":
        keep = set(chosen)
        wanted = None if keep == set(known) else _sample30k_filter(keep)
        tag = "" if wanted is None else "-" + hashlib.sha1(",".join(sorted(keep)).encode()).hexdigest()[:8]
        return [Asset("hagrid-sample-30k-384p", HF_SAMPLE30K, top="hagrid-sample-30k-384p",
                      members=wanted, tag=tag)]
    if subset == "v2":
        return [Asset("annotations", V2_ANNOTATIONS, top="annotations", approx_gb=0.7)] + [
            Asset(g, V2_URLS[g], extract_to="hagrid_dataset", top=g, approx_gb=V2_SIZES_GB.get(g))
            for g in chosen]
    assets = [Asset("ann_train_val", V1_EXTRA["ann_train_val"], top="ann_train_val")]
    assets += [Asset(f"train_val_{g}", V1_URLS[g], top=f"train_val_{g}") for g in chosen]
    if test:
        assets += [Asset("ann_test", V1_EXTRA["ann_test"], top="ann_test"),
                   Asset("test", V1_EXTRA["test"], top="test", approx_gb=60.4)]
    return assets


def _sample30k_filter(keep: set[str]) -> Callable[[str], bool]:
    def wanted(name: str) -> bool:
        parts = name.split("/")
        for part in parts:
            if part.startswith("train_val_"):
                return part[len("train_val_"):] in keep
        if len(parts) >= 2 and parts[-2] == "ann_train_val" and parts[-1].endswith(".json"):
            return parts[-1][:-5] in keep
        return True
    return wanted


# ----------------------------------------------------------------------------- download


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _total_from_headers(status: int, headers, start: int) -> int | None:
    if status == 206:
        rng = headers.get("Content-Range", "")  # "bytes 100-999/1000"
        total = rng.rsplit("/", 1)[-1]
        return int(total) if total.isdigit() else None
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download_file(url: str, dest: str | Path, *, size: int | None = None,
                  sha256: str | None = None, progress: bool = True, timeout: float = 30.0,
                  opener: Callable = urllib.request.urlopen) -> Path:
    """Fetch ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    A finished ``dest`` (of the right size, when known) is not fetched again. The size the
    server announces, and ``size``/``sha256`` when given, are checked before ``dest`` appears.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    keep_note = f"{part} is kept; run the same command again to resume"
    try:
        try:
            response = opener(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start:  # nothing left to fetch: the .part is complete
                total = _total_from_headers(206, {"Content-Range": exc.headers.get("Content-Range", "")}, start)
                if total in (None, start):
                    return _finish(part, dest, start, size, sha256)
            raise
        with response:
            status = response.status
            if status == 200 and start:  # the server ignored Range: start again from zero
                start = 0
            expected = _total_from_headers(status, response.headers, start)
            if size is not None and expected is not None and expected != size:
                raise DownloadError(f"{url} is {expected} bytes but {size} were expected; the "
                                    "file on the server changed: update the table in "
                                    "rnn_jax/data/download.py")
            mode = "ab" if start else "wb"
            with open(part, mode) as out, tqdm(total=expected, initial=start, unit="B",
                                                unit_scale=True, unit_divisor=1024,
                                                desc=dest.name, disable=not progress,
                                                dynamic_ncols=True) as bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
        got = part.stat().st_size
        if expected is not None and got != expected:
            raise DownloadError(f"download of {url} stopped at {got} of {expected} bytes; {keep_note}")
        return _finish(part, dest, got, size, sha256)
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"could not download {url}: {_one_line(exc)}"
                            + (f"; {keep_note}" if part.is_file() and part.stat().st_size else "")
                            ) from exc


def _finish(part: Path, dest: Path, got: int, size: int | None, sha256: str | None) -> Path:
    if size is not None and got != size:
        raise DownloadError(f"{part} has {got} bytes, expected {size}; delete it and download again")
    if sha256 is not None:
        h = hashlib.sha256()
        with open(part, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        if h.hexdigest() != sha256.lower():
            part.unlink()
            raise DownloadError(f"checksum mismatch for {dest.name} (got {h.hexdigest()[:16]}…); "
                                "the broken file was deleted: download again")
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------- extraction


def _check_member(name: str, target: Path) -> str:
    """Refuse absolute paths, drive letters, '..' and anything resolving outside ``target``."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or \
            ".." in norm.split("/"):
        raise DataError(f"refusing to extract unsafe archive member {name!r} (absolute path or '..')")
    resolved = (target / norm).resolve()
    if resolved != target.resolve() and target.resolve() not in resolved.parents:
        raise DataError(f"refusing to extract archive member {name!r}: it lands outside {target}")
    return norm


def _single_top(names: list[str]) -> str | None:
    """The one top-level folder every member sits in, if there is one."""
    tops = set()
    for name in names:
        norm = name.replace("\\", "/")
        while norm.startswith("./"):
            norm = norm[2:]
        if norm.strip("/"):
            tops.add(norm.split("/", 1)[0] if "/" in norm.strip("/") else "")
    return tops.pop() or None if len(tops) == 1 else None


def safe_extract(archive: str | Path, target: str | Path, top: str | None = None,
                 members: Callable[[str], bool] | None = None, progress: bool = True) -> Path:
    """Extract a zip or tar archive into ``target``, refusing unsafe members before writing anything.

    When ``top`` is given and the archive does not already unpack into a single ``top/``
    folder, it is extracted into ``target/top`` so that the layout is predictable.
    """
    from tqdm.auto import tqdm

    archive, target = Path(archive), Path(target)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if members is None or members(i.filename)]
            dest = target if top is None or _single_top([i.filename for i in infos]) == top else target / top
            dest.mkdir(parents=True, exist_ok=True)
            for info in infos:
                _check_member(info.filename, dest)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DataError(f"refusing to extract symlink {info.filename!r} from {archive.name}")
            for info in tqdm(infos, desc=f"extracting {archive.name}", unit="file",
                             disable=not progress, dynamic_ncols=True):
                zf.extract(info, dest)
        return dest
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            infos = [m for m in tf.getmembers() if members is None or members(m.name)]
            dest = target if top is None or _single_top([m.name for m in infos]) == top else target / top
            dest.mkdir(parents=True, exist_ok=True)
            for m in infos:
                _check_member(m.name, dest)
                if m.issym() or m.islnk():
                    link = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname)) \
                        if m.issym() else m.linkname
                    if link.startswith("/") or link.split("/")[0] == "..":
                        raise DataError(f"refusing to extract link {m.name!r} -> {m.linkname!r}: "
                                        "it points outside the target folder")
                if m.isdev():
                    raise DataError(f"refusing to extract device file {m.name!r}")
            try:  # the stdlib "data" filter re-checks everything while extracting
                tf.extractall(dest, members=infos, filter="data")
            except tarfile.FilterError as exc:
                raise DataError(f"refusing to extract {archive.name}: {exc}") from exc
        return dest
    raise DataError(f"{archive} is neither a zip nor a tar archive (a broken download?); "
                    "delete it and download again")


def fetch(assets: Iterable[Asset], out: str | Path, *, extract: bool = True,
          keep_archives: bool = False, progress: bool = True, timeout: float = 30.0,
          log: Callable[[str], None] = print) -> list[Path]:
    """Download (resumably) and unpack each asset under ``out``; finished ones are skipped."""
    out = Path(out).expanduser()
    archives = out / "archives"
    done = []
    for asset in assets:
        marker = out / f".{asset.name}{asset.tag}.extracted"
        if extract and marker.exists():
            log(f"{asset.name}: already downloaded and unpacked (delete {marker} to redo)")
            continue
        filename = posixpath.basename(asset.url.split("?", 1)[0]) or f"{asset.name}.zip"
        path = download_file(asset.url, archives / filename, size=asset.size, sha256=asset.sha256,
                             progress=progress, timeout=timeout)
        if extract:
            where = safe_extract(path, out / asset.extract_to, top=asset.top,
                                 members=asset.members, progress=progress)
            marker.write_text(f"{asset.url}\n")
            if not keep_archives:
                path.unlink()
            log(f"{asset.name}: unpacked into {where}")
        done.append(path)
    if not keep_archives and archives.is_dir() and not any(archives.iterdir()):
        shutil.rmtree(archives, ignore_errors=True)
    return done

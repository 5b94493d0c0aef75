"""Downloader: resumes with HTTP Range against a local server, checks sizes, extracts safely."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rnn_jax.data import download
from rnn_jax.data.download import Asset, DownloadError, download_file, fetch, plan, safe_extract
from rnn_jax.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 400  # 100 KiB


class Server:
    """A loopback HTTP server with Range support (SimpleHTTPRequestHandler has none)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.cut_next = 0  # close the connection after this many bytes on the next response
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.cut_next:
                    body, server.cut_next = body[: server.cut_next], 0
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_resumes_a_partial_download_with_range(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    download_file(server.url("/a.bin"), dest, progress=False, size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "a.bin.part").exists()
    assert server.requests[-1]["range"] == "bytes=1000-"
    download_file(server.url("/a.bin"), dest, progress=False, size=len(PAYLOAD))
    assert len(server.requests) == 1  # a finished file is not fetched again


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    server.files["/b.bin"] = PAYLOAD
    server.cut_next = 30000
    dest = tmp_path / "b.bin"
    with pytest.raises(DownloadError, match="run the same command again to resume") as info:
        download_file(server.url("/b.bin"), dest, progress=False, timeout=5)
    assert "\n" not in str(info.value)
    assert (tmp_path / "b.bin.part").stat().st_size == 30000 and not dest.exists()
    download_file(server.url("/b.bin"), dest, progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == "bytes=30000-"


def test_complete_part_file_and_server_without_range(server, tmp_path):
    server.files["/c.bin"] = PAYLOAD
    (tmp_path / "c.bin.part").write_bytes(PAYLOAD)  # 416: nothing left to fetch
    download_file(server.url("/c.bin"), tmp_path / "c.bin", progress=False)
    assert (tmp_path / "c.bin").read_bytes() == PAYLOAD
    server.ignore_range = True  # answers 200 with the whole file: start over, no duplication
    (tmp_path / "d.bin.part").write_bytes(b"x" * 500)
    download_file(server.url("/c.bin"), tmp_path / "d.bin", progress=False)
    assert (tmp_path / "d.bin").read_bytes() == PAYLOAD


def test_size_and_checksum_are_checked(server, tmp_path):
    server.files["/e.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match="expected"):
        download_file(server.url("/e.bin"), tmp_path / "e.bin", size=123, progress=False)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(server.url("/e.bin"), tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    good = hashlib.sha256(PAYLOAD).hexdigest()
    download_file(server.url("/e.bin"), tmp_path / "g.bin", sha256=good, progress=False)
    assert (tmp_path / "g.bin").read_bytes() == PAYLOAD and not (tmp_path / "g.bin.part").exists()


def test_network_errors_are_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url("/missing.zip"), tmp_path / "m.zip", progress=False)
    port = server.httpd.server_address[1]
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(DownloadError, match="could not download") as info:
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", progress=False, timeout=2)
    assert "\n" not in str(info.value)


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
def test_zip_with_unsafe_paths_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(make_zip({"fine.txt": b"ok", name: b"evil"}))
    with pytest.raises(DataError, match="refusing"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "fine.txt").exists()  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    archive.write_bytes(make_zip({"a.txt": b"a"}, symlink="link"))
    with pytest.raises(DataError, match="symlink"):
        safe_extract(archive, tmp_path / "out", progress=False)


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return path


def test_tar_with_dotdot_or_escaping_link_is_refused(tmp_path):
    dotdot = tarfile.TarInfo("../evil.txt")
    dotdot.size = 1
    with pytest.raises(DataError, match="refusing"):
        safe_extract(make_tar(tmp_path / "a.tgz", [dotdot]), tmp_path / "out", progress=False)
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    with pytest.raises(DataError, match="outside"):
        safe_extract(make_tar(tmp_path / "b.tgz", [link]), tmp_path / "out", progress=False)
    ok = tarfile.TarInfo("top/file.txt")
    ok.size = 3
    dest = safe_extract(make_tar(tmp_path / "c.tgz", [ok]), tmp_path / "out", top="top",
                        progress=False)
    assert (dest / "top" / "file.txt").read_bytes() == b"xxx"


def test_zip_without_top_folder_goes_into_one(tmp_path):
    archive = tmp_path / "like.zip"
    archive.write_bytes(make_zip({"a.jpg": b"1", "b.jpg": b"2"}))
    dest = safe_extract(archive, tmp_path / "out", top="like", progress=False)
    assert (tmp_path / "out" / "like" / "a.jpg").exists() and dest == tmp_path / "out" / "like"
    archive.write_bytes(make_zip({"like/c.jpg": b"3"}))
    safe_extract(archive, tmp_path / "out", top="like", progress=False)
    assert (tmp_path / "out" / "like" / "c.jpg").exists()
    assert not (tmp_path / "out" / "like" / "like").exists()


def test_fetch_downloads_unpacks_and_skips_when_done(server, tmp_path):
    server.files["/sample.zip"] = make_zip({
        "hagrid-sample-30k-384p/ann_train_val/like.json": b"{}",
        "hagrid-sample-30k-384p/ann_train_val/palm.json": b"{}",
        "hagrid-sample-30k-384p/hagrid_30k/train_val_like/1.jpg": b"j",
        "hagrid-sample-30k-384p/hagrid_30k/train_val_palm/2.jpg": b"j"})
    asset = plan("sample30k", ["like"])[0]
    asset = Asset(asset.name, server.url("/sample.zip"), top=asset.top, members=asset.members,
                  tag=asset.tag)
    logs: list[str] = []
    fetch([asset], tmp_path / "hagrid", progress=False, log=logs.append)
    base = tmp_path / "hagrid" / "hagrid-sample-30k-384p"
    assert (base / "hagrid_30k" / "train_val_like" / "1.jpg").exists()
    assert (base / "ann_train_val" / "like.json").exists()
    assert not (base / "hagrid_30k" / "train_val_palm").exists()  # gesture filter
    assert not (tmp_path / "hagrid" / "archives").exists()  # archive removed after unpacking
    fetch([asset], tmp_path / "hagrid", progress=False, log=logs.append)
    assert len(server.requests) == 1 and "already downloaded" in logs[-1]


def test_plan_tables():
    v2 = plan("v2", ["like", "one", "no_gesture"])
    assert [a.name for a in v2] == ["annotations", "like", "one", "no_gesture"]
    assert all(a.url.startswith("https://") and a.url.endswith(".zip") for a in v2)
    assert len(download.V2_URLS) == 34 and len(download.V1_URLS) == 18
    assert plan("sample30k")[0].members is None
    with pytest.raises(DataError, match="unknown gesture"):
        plan("v1", ["xsign"])


def load_tool():
    spec = importlib.util.spec_from_file_location("download_hagrid", ROOT / "tools" / "download_hagrid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_help_and_errors(tmp_path, capsys, monkeypatch):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "download_hagrid.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--gestures" in out.stdout and "--subset" in out.stdout
    tool = load_tool()
    assert tool.main(["--subset", "v2", "--gestures", "nope"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    monkeypatch.setattr(download, "plan", lambda *a, **k: [Asset("x", "http://127.0.0.1:9/x.zip")])
    assert tool.main(["--out", str(tmp_path), "--quiet", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not download") and "Traceback" not in err
    assert tool.main(["--subset", "v2", "--gestures", "like", "--dry-run"]) == 0

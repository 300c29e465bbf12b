"""The checkpoint download under torchrun, tested on the CPU: two ranks racing on a local HTTP
server; local rank 0 downloads, the other waits on the process group's store (download_wait) and verifies
the file."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import free_port

PY = sys.executable


# ---- 3. the checkpoint download under torchrun: local rank 0 downloads, the others verify ----

PAYLOAD = os.urandom(3 * 2**20)
NAME = f"ckpt_x-{hashlib.sha256(PAYLOAD).hexdigest()[:8]}.pth"

FETCH = r'''
import json, os, sys
import torch.distributed as dist
from panbench.errors import PanbenchError
from panbench.evaluation.runtime import download_wait
from panbench.models import checkpoints
dist.init_process_group("gloo")
if dist.get_rank() == 1:
    import time
    time.sleep(float(os.environ.get("LATE_S", "0")))  # a rank that reaches the download late
try:
    path, digest = checkpoints.fetch(sys.argv[1], any_rank=download_wait)
    print(json.dumps({"rank": dist.get_rank(), "digest": digest, "path": str(path)}))
    code = 0
except PanbenchError as e:
    print(json.dumps({"rank": dist.get_rank(), "error": str(e)}))
    code = 2
os._exit(code)
'''


class _Server:
    """http.server on 127.0.0.1 serving PAYLOAD slowly (to widen any race); at most `limit` requests,
    stops by itself after `seconds`."""

    def __init__(self, status: int = 200, limit: int = 4, seconds: float = 90) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                if status != 200:
                    self.send_error(status)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                for k in range(0, len(PAYLOAD), 256 * 1024):
                    self.wfile.write(PAYLOAD[k:k + 256 * 1024])
                    time.sleep(0.05)

            def log_message(self, *a) -> None:
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 0.5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{NAME}"
        deadline = time.time() + seconds

        def serve() -> None:
            while len(self.requests) < limit and time.time() < deadline:
                self.httpd.handle_request()
            self.httpd.server_close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()


def _two_ranks(tmp_path: Path, url: str, late_s: float = 0.0) -> list[tuple[int, dict]]:
    script = tmp_path / "fetch.py"
    script.write_text(FETCH)
    port = free_port()
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "TORCH_HOME": str(tmp_path / "torch"), "OMP_NUM_THREADS": "1", "LATE_S": str(late_s)}
        procs.append(subprocess.Popen([PY, str(script), url], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        lines = [x for x in stdout.splitlines() if x.startswith("{")]
        assert lines, stderr[-2000:]
        out.append((p.returncode, json.loads(lines[-1])))
    return out


@pytest.mark.slow
def test_two_ranks_download_the_checkpoint_once(tmp_path) -> None:
    server = _Server()
    res = _two_ranks(tmp_path, server.url)
    assert [code for code, _ in res] == [0, 0], res
    assert len(server.requests) == 1, server.requests  # local rank 0 only
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert [r["digest"] for _, r in res] == [digest, digest]
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert (cache / NAME).read_bytes() == PAYLOAD and not list(cache.glob("*.part"))


@pytest.mark.slow
def test_a_failed_download_stops_every_rank_in_one_line(tmp_path) -> None:
    server = _Server(status=404)
    t = time.time()
    res = _two_ranks(tmp_path, server.url)
    assert time.time() - t < 100
    assert [code for code, _ in res] == [2, 2], res
    assert "download failed" in res[0][1]["error"] and "local rank 0 failed" in res[1][1]["error"]
    assert len(server.requests) == 1


def test_a_failed_download_reaches_a_rank_that_arrives_late(tmp_path) -> None:
    """Local rank 0 (which holds the store) fails at once and waits for the other rank to read its post
    before it stops: the late rank gets the one-line error, not a reset connection."""
    server = _Server(status=404)
    res = _two_ranks(tmp_path, server.url, late_s=3.0)
    assert [code for code, _ in res] == [2, 2], res
    assert "local rank 0 failed" in res[1][1]["error"]

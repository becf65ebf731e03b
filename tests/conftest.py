"""Session fixtures shared across the test tree.

``postgres_url``: a real PostgreSQL server (Debian's binaries, /usr/lib/postgresql/<v>/bin),
started for the test session on 127.0.0.1 in a temporary data directory and stopped afterwards.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (runuser).
Tests using it are skipped only when the binaries are absent, and fail instead when
HWNAS_REQUIRE_POSTGRES=1 (set by .ci/run).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    override = os.environ.get("HWNAS_PG_BIN")
    candidates = [override] if override else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg2://postgres@127.0.0.1:<port>/hwnas_test`` on a live server."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        message = ("PostgreSQL server binaries not found (Debian: apt-get install postgresql; "
                   "or set HWNAS_PG_BIN to the folder holding initdb and pg_ctl)")
        if os.environ.get("HWNAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + "; HWNAS_REQUIRE_POSTGRES=1 makes this an error")
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="hwnas-pg-"))  # under /tmp: reachable by the postgres user
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    log = root / "server.log"

    def run(cmd: list[str]) -> None:
        done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}\n{tail}")

    run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
         "--no-sync"])
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"])
    try:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE hwnas_test")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/hwnas_test"
    finally:
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                        "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_sr() -> list[str]:
    """``python -m search`` overrides for the real SR pipeline at the smallest size that still
    trains, scores and (with the final stage) exports: for tests of processes, not of quality."""
    set5 = Path(__file__).resolve().parents[1] / "tasks" / "sr" / "assets" / "Set5"  # LR shipped: no resizing
    return ["task=sr", "device=s21", "experiment=smoke", "search.n_trials=3",
            f"task.data.train_root={set5}", f"task.data.eval_roots={{set5: {set5}}}",
            "task.space.max_blocks=2", "task.space.channels=[8,12]",
            "task.proxy.steps=2", "task.proxy.batch_size=4", "task.data.val_images=1",
            "task.final.steps=2", "task.final.batch_size=4", "task.baselines=[bicubic]"]


import search.config  # noqa: E402,F401  (registers the config schemas for hydra.compose in tests)

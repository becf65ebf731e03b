"""The storage password reaches no file a run writes: result.json, reports, logs, the MLflow
tracker's params, no .hydra/ copies."""

import subprocess
import sys

import pytest

SECRET = "s3cr/t#pw"


@pytest.mark.slow
def test_password_in_no_file_of_the_run(postgres_url, tmp_path, tiny_sr):
    # The test server trusts every login, so any password is accepted and must then be hidden.
    user_url = postgres_url.replace("postgres@", f"postgres:{SECRET.replace('/', '%2F').replace('#', '%23')}@")
    query_url = f"{postgres_url}?password={SECRET.replace('#', '%23')}"
    for i, url in enumerate((user_url, query_url)):
        run_dir = tmp_path / f"run{i}"
        proc = subprocess.run([sys.executable, "-m", "search", *tiny_sr, "logger=mlflow", f"search.storage='{url}'",  # quoted
                               f"search.study_name=secret-{tmp_path.name}-{i}", "search.run_final=false",
                               f"hydra.run.dir={run_dir}"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert not (run_dir / ".hydra").exists() and (run_dir / "mlflow.db").is_file()
        for needle in (SECRET, SECRET.replace("/", "%2F").replace("#", "%23"), "s3cr"):
            assert needle not in proc.stdout + proc.stderr
            for path in run_dir.rglob("*"):
                if path.is_file():
                    assert needle.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_password_in_no_file_of_a_sweep(postgres_url, tmp_path, tiny_sr):
    """Hydra saves ``multirun.yaml`` (config and overrides) before any job runs: it is masked too."""
    url = postgres_url.replace("postgres@", f"postgres:{SECRET.replace('/', '%2F').replace('#', '%23')}@")
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "search", "-m", *tiny_sr, f"search.storage='{url}'",
                           f"search.study_name=secret-sweep-{tmp_path.name}", "search.run_final=false",
                           "search.heartbeat_s=60,61", f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (sweep / "multirun.yaml").is_file()
    for path in sweep.rglob("*"):
        if path.is_file():
            assert b"s3cr" not in path.read_bytes(), path

"""``train.*``: which device each worker trains on, recorded in result.json; a missing GPU is one
error line; two gloo ranks of supernet training under torchrun end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from search.config.compose import compose_config
from search.errors import UserError
from search.train_settings import TrainSettings

HERE = Path(__file__).resolve().parent


def test_four_workers_on_two_gpus_take_0_1_0_1_and_record_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    records = [TrainSettings.from_cfg(compose_config([f"search.worker={k}", "train.amp=bf16"])).record()
               for k in range(4)]
    assert [r["device"] for r in records] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert all(r["amp"] == "bf16" and r["requested"] == "auto" for r in records)
    monkeypatch.setenv("SLURM_LOCALID", "1")  # a node's local rank wins over the sweep's worker number
    assert TrainSettings.from_cfg(compose_config(["search.worker=2"])).placement.device == "cuda:1"
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert TrainSettings.from_cfg(compose_config(["search.worker=1"])).placement.device == "cuda:0"


@pytest.mark.parametrize(("overrides", "needle"), [
    (["train.device=cuda"], "train.device=cuda"), (["train.device=cuda:1"], "train.device=cuda:1"),
    (["train.device=tpu"], "train.device='tpu'"), (["train.amp=fp8"], "train.amp='fp8'"),
    (["train.amp=fp16"], "train.amp=fp16"), (["train.threads=0"], "train.threads=0"),
])
def test_bad_train_settings_name_the_setting(overrides, needle):
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace("'", "'")):
        TrainSettings.from_cfg(compose_config(overrides), cuda_count=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_exits_2_with_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "search", "train.device=cuda", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: train.device=cuda"), proc.stderr
    assert not (tmp_path / "result.json").exists()


@pytest.mark.slow
def test_a_bf16_cpu_run_records_where_it_trained(tmp_path, tiny_sr):
    subprocess.run([sys.executable, "-m", "search", *tiny_sr, "train.device=cpu", "train.amp=bf16",
                    "search.run_final=false", f"hydra.run.dir={tmp_path}"], check=True, timeout=600,
                   capture_output=True)
    training = json.loads((tmp_path / "result.json").read_text())["training"]
    assert training["device"] == "cpu" and training["amp"] == "bf16" and training["threads"] >= 1


@pytest.mark.slow
def test_two_gloo_ranks_of_supernet_training_end_with_identical_weights(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(HERE / "ddp_supernet_worker.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env={**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    zero, one = (torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in (0, 1))
    assert zero["size"] == one["size"] == 2
    assert not torch.equal(zero["next_batch"], one["next_batch"])  # each rank trained on its own batches
    assert zero["state"].keys() == one["state"].keys()
    for key in zero["state"]:
        assert torch.equal(zero["state"][key], one["state"][key]), key
    assert (tmp_path / "ckpt0.pt").exists() and not (tmp_path / "ckpt1.pt").exists()  # rank 0 writes

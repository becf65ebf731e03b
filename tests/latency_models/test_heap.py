"""The heap is kept while timing: a warm forward pass faults in (almost) no fresh pages."""

import json
import os
import subprocess
import sys

import pytest

_CHILD = r"""
import json, resource, torch
import latency_models
conv = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 3, 1))
m = latency_models.measure(conv, (1, 3, 360, 640), threads=1, warmup=2, min_repeats=6, max_repeats=6)
torch.set_num_threads(1)  # as timed: a pass at another thread count may fault in a fresh worker's pages
x = torch.randn(1, 3, 360, 640)
with torch.inference_mode():
    conv(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        conv(x)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
print(json.dumps({"faults": faults, "heap": m.host["heap"]}))
"""


def _run(env_heap: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "HWNAS_HEAP"}
    if env_heap is not None:
        env["HWNAS_HEAP"] = env_heap
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_kept_heap_reuses_activation_memory_and_says_so():
    kept, default = _run(None), _run("default")
    # 59 MB of activation per forward: ~14,000 pages when each is served fresh by mmap
    assert default["faults"] > 5000, default
    assert kept["faults"] < 500, (kept, default)
    assert kept["heap"].startswith("kept") and default["heap"].startswith("default")

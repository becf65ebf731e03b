"""A torn or foreign ViT teacher cache entry is trained again (with a message), never fatal."""

import json

import torch

from search.vit.task import _cached_teacher
from spaces.atomic import atomic_path, write_text_atomic
from tasks.vit.demo import build_demo_teacher


def test_torn_teacher_cache_is_retrained_not_fatal(tmp_path, capsys):
    path = tmp_path / "demo_teacher_abc.pt"
    good = build_demo_teacher(img_size=28, seed=0)
    write_text_atomic(path.with_suffix(".json"), json.dumps({"test_top1": 0.9}))
    with atomic_path(path) as tmp:
        torch.save(good.state_dict(), tmp)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a kill mid-write (before writes were atomic)
    fresh = build_demo_teacher(img_size=28, seed=1)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert _cached_teacher(fresh, path) is None
    out = capsys.readouterr().out
    assert "does not load" in out and "training it again" in out
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())  # untouched: trains from its init
    path.write_bytes(whole)
    model, info = _cached_teacher(build_demo_teacher(img_size=28, seed=1), path)
    assert info["test_top1"] == 0.9 and all(torch.equal(a, b) for a, b in
                                            zip(model.state_dict().values(), good.state_dict().values()))

"""Differentiable surrogate over the WDSR-B space parameters, distilled from a fitted predictor.

``latency_ms(arch) = fixed(C) + sum over blocks block(C, M1, M2)``: two small MLPs (softplus
outputs, inputs scaled by the space's maxima). The sum over blocks carries depth, so a
gradient-based search can relax C, M1, M2 and a block mask. ``torch_block_latency`` takes
``[C, M1, M2, C]`` rows like the published block models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from latency_models.artifact import npz_arrays, npz_bytes, register_kind
from latency_models.predictors.base import LatencyPredictor

HIDDEN = 64


def _mlp_numpy(params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        h = np.maximum(h, 0) if i < len(params) - 1 else np.logaddexp(0, h)
    return h[:, 0]


@register_kind("sr_surrogate_mlp")
class SRSurrogate(LatencyPredictor):
    """Distilled torch surrogate; ``torch_arch_latency`` / ``torch_block_latency`` are differentiable."""

    def __init__(self, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super().__init__(manifest)
        self.arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
        self.scale_in = self.arrays["scale_in"]  # (3,) maxima of C, M1, M2
        self.block_params = [(self.arrays[f"block.{i}.w"], self.arrays[f"block.{i}.b"]) for i in range(3)]
        self.fixed_params = [(self.arrays[f"fixed.{i}.w"], self.arrays[f"fixed.{i}.b"]) for i in range(3)]

    # numpy path (no torch needed)
    def _blocks_np(self, cmm: np.ndarray) -> np.ndarray:
        return _mlp_numpy(self.block_params, cmm / self.scale_in)

    def _fixed_np(self, c: np.ndarray) -> np.ndarray:
        return _mlp_numpy(self.fixed_params, c[:, None] / self.scale_in[:1])

    def predict_archs(self, archs: Sequence[Any], input_hw: tuple[int, int] | None = None) -> np.ndarray:
        fitted = tuple(self.manifest["input_hw"])
        if input_hw is not None and tuple(input_hw) != fitted:
            raise ValueError(f"surrogate distilled at LR {fitted}; distill another for {tuple(input_hw)}")
        rows = np.array([(a.channels, b.m1, b.m2) for a in archs for b in a.blocks], np.float32).reshape(-1, 3)
        owners = np.repeat(np.arange(len(archs)), [a.depth for a in archs])
        out = self._fixed_np(np.array([a.channels for a in archs], np.float32)).astype(np.float64)
        np.add.at(out, owners, self._blocks_np(rows))
        return out

    def predict(self, module: Any, input_shape: Sequence[int]) -> float:
        raise TypeError("the SR surrogate predicts WDSR-B descriptions only (predict_archs / torch_arch_latency)")

    # torch path (differentiable)
    def _torch(self, params: list[tuple[np.ndarray, np.ndarray]], x: Any) -> Any:
        import torch

        h = x
        for i, (w, b) in enumerate(params):
            h = torch.nn.functional.linear(h, torch.as_tensor(w, device=x.device), torch.as_tensor(b, device=x.device))
            h = torch.relu(h) if i < len(params) - 1 else torch.nn.functional.softplus(h)
        return h[:, 0]

    def torch_block_latency(self, x: Any) -> Any:
        """ms per block for ``x`` float ``(n, 4)`` rows ``[C, M1, M2, C]`` -> ``(n,)``, differentiable."""
        import torch

        if x.ndim != 2 or x.shape[-1] != 4:
            raise ValueError(f"expected x of shape (n, 4) = [C, M1, M2, C] rows, got {tuple(x.shape)}")
        s = torch.as_tensor(self.scale_in, device=x.device)
        return self._torch(self.block_params, x[:, :3].float() / s)

    def torch_arch_latency(self, channels: Any, m1: Any, m2: Any, keep: Any | None = None) -> Any:
        """ms of one network: ``channels`` scalar tensor, ``m1``/``m2`` ``(depth,)``, ``keep`` an
        optional ``(depth,)`` block mask in [0, 1] (relaxed depth). Differentiable in all."""
        import torch

        c = channels.float().reshape(1).expand(m1.shape[0])
        blocks = self.torch_block_latency(torch.stack([c, m1.float(), m2.float(), c], 1))
        if keep is not None:
            blocks = blocks * keep
        s = torch.as_tensor(self.scale_in[:1], device=c.device)
        return self._torch(self.fixed_params, channels.float().reshape(1, 1) / s)[0] + blocks.sum()

    def _payload(self) -> dict[str, bytes]:
        return {"weights.npz": npz_bytes(self.arrays)}

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], members: dict[str, bytes]) -> SRSurrogate:
        return cls(manifest, npz_arrays(members["weights.npz"]))


def distill(teacher: LatencyPredictor, space: Any, input_hw: tuple[int, int], *, n_archs: int = 4000,
            steps: int = 1500, seed: int = 0) -> SRSurrogate:
    """Fit the surrogate to ``teacher.predict_archs`` on ``n_archs`` random members of ``space``
    (relative squared error, Adam); the held-out fit goes into the manifest."""
    import torch


    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: more threads only spin (9x slower on a loaded 2-core host)
    try:
        return _distill(teacher, space, input_hw, n_archs, steps, seed)
    finally:
        torch.set_num_threads(previous_threads)


def _distill(teacher: LatencyPredictor, space: Any, input_hw: tuple[int, int], n_archs: int, steps: int,
             seed: int) -> SRSurrogate:
    import torch

    from latency_models.evaluate import metrics
    from spaces.sampling import RandomSuggester

    archs = [space.sample(RandomSuggester(seed * 1_000_003 + i)) for i in range(n_archs)]
    y = torch.tensor(teacher.predict_archs(archs, input_hw), dtype=torch.float32)
    scale_in = np.array([max(space.channels), space.m1[1], space.m2[1]], np.float32)
    gen = torch.Generator().manual_seed(seed)
    nets = {name: torch.nn.Sequential(torch.nn.Linear(d, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                      torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1)) for name, d in (("block", 3), ("fixed", 1))}
    for net in nets.values():
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.3, generator=gen)
    rows = torch.tensor([(a.channels, b.m1, b.m2) for a in archs for b in a.blocks], dtype=torch.float32) / torch.tensor(scale_in)
    owners = torch.tensor(np.repeat(np.arange(n_archs), [a.depth for a in archs]))
    chans = torch.tensor([[a.channels] for a in archs], dtype=torch.float32) / float(scale_in[0])
    n_fit = int(0.8 * n_archs)
    opt = torch.optim.Adam([p for n in nets.values() for p in n.parameters()], lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def forward() -> torch.Tensor:
        per_block = torch.nn.functional.softplus(nets["block"](rows))[:, 0]
        total = torch.nn.functional.softplus(nets["fixed"](chans))[:, 0]
        return total.index_add(0, owners, per_block)

    for _ in range(steps):
        opt.zero_grad()
        loss = (((forward() - y) / y)[:n_fit] ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
    arrays = {"scale_in": scale_in}
    for name, net in nets.items():
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        for i, lin in enumerate(linears):
            arrays[f"{name}.{i}.w"] = lin.weight.detach().numpy().copy()
            arrays[f"{name}.{i}.b"] = lin.bias.detach().numpy().copy()
    with torch.no_grad():
        fidelity = metrics(y[n_fit:].numpy(), forward()[n_fit:].numpy())
    manifest = {k: teacher.manifest.get(k) for k in ("device", "backend", "threads", "host", "library_versions")}
    manifest.update({
        "kind": "sr_surrogate_mlp", "predictor": {"kind": "sr_surrogate_mlp", "teacher": teacher.manifest.get("kind"),
                                                  "hidden": HIDDEN},
        "input_hw": list(input_hw), "scale": space.scale,
        "feature_schema": {"block": ["C", "M1", "M2"], "fixed": ["C"], "scale_in": scale_in.tolist(), "unit": "ms"},
        "n_samples": {"distilled_archs": n_fit}, "teacher_fidelity": fidelity,
        "held_out_metrics": teacher.manifest.get("held_out_metrics"),
        "provenance": {"text": f"distilled from a {teacher.manifest.get('kind')} predictor on {n_fit} random archs; "
                               "teacher_fidelity is against the teacher on held-out archs", "citation": None},
        "not_modelled": ["members outside the space it was distilled on", "input sizes other than input_hw"],
    })
    return SRSurrogate(manifest, arrays)

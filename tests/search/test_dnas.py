"""strategy=dnas: the latency term's gradient with the real published S21 model, fitting the
derived net to the budget, and real supernet training steps on T91 that checkpoint and resume."""

import json

import pytest
import torch

import latency_models
import tasks.sr as sr
from search.config.compose import compose_config
from search.errors import UserError
from search.settings import strategy_section
from search.sr.dnas.derive import fit_to_budget
from search.sr.dnas.options import DnasOptions, dnas_options, make_plan
from search.sr.dnas.train import LatencyTerm, SupernetPlan, load_checkpoint, train_supernet
from spaces import SRSpace
from tasks.sr.supernet import SRSupernet

SPACE = SRSpace()  # the default space: 16 blocks, C up to 24, M1 up to 144, M2 up to 20


def yaml_options(smoke: bool) -> dict:
    """The strategy options as the app hands them to the runner (conf/strategy/dnas.yaml, with
    experiment=smoke's overlay on top), without the strategy's name."""
    cfg = compose_config(["strategy=dnas", *(["experiment=smoke"] if smoke else [])])
    opts = strategy_section(cfg)
    opts.pop("name")
    return opts


@pytest.fixture(scope="module")
def s21():
    return latency_models.load_published("s21", 2)


def predict(model):
    return lambda archs: [float(v) for v in model.predict_archs(list(archs))]


def test_latency_term_gradient_is_nonzero_and_has_the_right_sign(s21):
    net = SRSupernet(SPACE)
    net.set_search(width=True, depth=True)
    supernet_ms = predict(s21)([SPACE.largest()])[0]
    assert net.expected_latency_ms(s21.torch_block_latency).item() < supernet_ms  # masks start below max
    term = LatencyTerm(s21.torch_block_latency, None, 33.3, supernet_ms)
    penalty = term.penalty(net.expected_latency_ms(s21.torch_block_latency))
    assert 0 < penalty.item() < 1
    penalty.backward()
    gates = net.gates.logits.grad
    assert torch.all(gates > 0), gates  # a more probable block costs time: the loss pushes gates down
    for name, masks in (("C", [net.c_mask]), ("M1", net.m1_masks), ("M2", net.m2_masks)):
        for mask in masks:
            g = mask.logits.grad
            assert g.abs().sum() > 0, name
            assert g[-1] > 0 > g[0], (name, g)  # widest choice costs time, narrowest saves it
            # moving mass towards wider choices raises the expected width, and the latency with it
            assert float((g * (mask.width_values - mask.expected_width().detach()) * mask.probs().detach()).sum()) > 0
    # under the target the term is zero and gives no gradient
    net.zero_grad()
    slack = LatencyTerm(s21.torch_block_latency, None, supernet_ms - 1.0, supernet_ms)
    with torch.no_grad():
        net.gates.logits.fill_(-4.0)
    slack.penalty(net.expected_latency_ms(s21.torch_block_latency)).backward()
    assert float(net.gates.logits.grad.abs().sum()) == 0.0


@pytest.mark.parametrize("budget_ms", [16.0, 33.3, 66.0])
def test_fit_to_budget_lands_within_5_percent_under_a_binding_budget(s21, budget_ms):
    net = SRSupernet(SPACE)
    gen = torch.Generator().manual_seed(int(budget_ms))
    with torch.no_grad():  # a searched-looking relaxation: gates spread, widths spread
        net.gates.logits.copy_(torch.randn(16, generator=gen) * 2 - 1)
        for mask in net.width_masks():
            mask.logits.copy_(torch.randn(mask.logits.shape, generator=gen))
    fitted = fit_to_budget(net, predict(s21), budget_ms)
    SPACE.validate(fitted.arch)
    assert fitted.latency_ms == pytest.approx(predict(s21)([fitted.arch])[0])
    assert 0.93 * budget_ms <= fitted.latency_ms <= budget_ms  # 1 block at max is 24.4 ms: 16 ms is coarse
    if budget_ms > 20:
        assert fitted.latency_ms >= 0.95 * budget_ms
    assert len(fitted.kept) == fitted.arch.depth == len(set(fitted.kept))


def test_supernet_trains_on_t91_checkpoints_and_resumes(s21, tmp_path):
    space = SRSpace(max_blocks=3)
    patches = sr.TrainPatches(scale=2, patch_hr=24, seed=0, val_images=1)
    val = [v for v in patches.val_set()][:1]
    supernet_ms = predict(s21)([space.largest()])[0]
    term = LatencyTerm(s21.torch_block_latency, None, 20.0, supernet_ms)
    plan = SupernetPlan(warmup_steps=3, width_steps=3, joint_steps=6, batch_size=2, patch_hr=24, arch_lr=0.2,
                        checkpoint_every=4, eval_every=6, threads=1)
    ckpt = tmp_path / "supernet.pt"

    def point(net, state, p):
        p["derived_ms"] = predict(s21)([net.derive()[0]])[0]

    torch.manual_seed(0)
    net = SRSupernet(space, seed=1)
    gates_before = net.gates.logits.detach().clone()
    state = train_supernet(net, patches, val, plan, term, ckpt, point)
    assert state.step == 12 and state.phases == [3, 3, 6]
    assert [p["step"] for p in state.trajectory] == [3, 6, 12]
    assert all(20 < p["val_psnr"] < 45 for p in state.trajectory)
    assert not torch.equal(net.gates.logits.detach(), gates_before)  # gates moved in the joint phase
    assert state.trajectory[-1]["expected_ms"] < supernet_ms  # widths shrank under the latency term
    # a longer plan continues from the checkpoint: same tensors, step count carried on
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 12
    again = SRSupernet(space, seed=1)
    loaded = load_checkpoint(ckpt, again, {}, patches)
    assert loaded.step == 12 and json.dumps(loaded.trajectory)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert train_supernet(again, patches, val, plan, term, ckpt, point).step == 12  # done: nothing to run


def test_options_come_whole_from_the_yaml_and_bad_values_name_the_setting():
    full = DnasOptions.parse(yaml_options(smoke=False), 60.0, 1)  # every setting is in the YAML
    assert full.plan.warmup_steps == 400 and full.plan.calibrate_steps == 6 and full.final_init == "supernet"
    smoke = DnasOptions.parse(yaml_options(smoke=True), 60.0, 1)
    assert smoke.plan.warmup_steps == 10 and smoke.plan.calibrate_steps == 3  # the smoke block, as merged
    assert smoke.select == "none" and not smoke.selecting and smoke.select_share == 0.0
    assert smoke.plan.timeout_s == 60.0  # nothing kept for candidates when not selecting
    chosen = DnasOptions.parse({**yaml_options(smoke=True), "select": "validation"}, 60.0, 1)
    assert chosen.selecting and chosen.plan.timeout_s == pytest.approx(60.0 * (1 - 0.2))
    with pytest.raises(UserError, match="does not know"):
        dnas_options({**yaml_options(smoke=True), "warmup_stpes": 3})
    with pytest.raises(UserError, match=r"misses the settings \['tolerance'\]"):
        dnas_options({k: v for k, v in yaml_options(smoke=True).items() if k != "tolerance"})
    for key, bad in (("select", "validaton"), ("final_init", "warm"), ("derive", "mean")):
        with pytest.raises(UserError, match=f"strategy.{key}="):
            dnas_options({**yaml_options(smoke=True), key: bad})
    with pytest.raises(UserError, match="tau"):
        make_plan({**yaml_options(smoke=True), "tau_start": 0.1, "tau_end": 1.0}, 60, 1)


def test_torch_surrogate_latency_drives_the_supernet(s21, tmp_path):
    """A surrogate (blocks + fixed(C) term, as the CPU toolkit ships) plugs in like the published
    model: its expected latency matches its own prediction of the full net and has gradients."""
    from latency_models.predictors.surrogate import distill
    from search.latency import LatencyEstimator
    from search.settings import DeviceProfile
    from search.sr.dnas.latency import differentiable_latency

    surrogate = distill(s21, SPACE, (360, 640), n_archs=300, steps=150)
    device = DeviceProfile("s21", "test", (360, 640), 33.3, "predictor", None)
    est = LatencyEstimator("predictor", device, "surrogate", False, predict(surrogate), predictor=surrogate)
    view, why = est.torch_latency()
    assert view is not None and view.fixed_ms is not None and why == ""
    block_ms, fixed_ms, desc, check_ms = differentiable_latency(est, device, SPACE, tmp_path)
    assert fixed_ms is not None and "x1.000" in desc
    net = SRSupernet(SPACE)
    full = net.expected_latency_ms(block_ms, fixed_ms)
    assert full.item() == pytest.approx(check_ms([SPACE.largest()])[0], rel=1e-4)
    net.set_search(width=True, depth=True)
    net.expected_latency_ms(block_ms, fixed_ms).backward()
    assert torch.all(net.gates.logits.grad > 0) and net.c_mask.logits.grad[-1] > 0


def test_candidates_one_per_trunk_width_scored_from_the_supernets_weights(s21):
    """select=validation: the plain derivation plus one fitted net per other C, all within the
    budget, each fine-tuned from the supernet's weights; the best validation PSNR wins."""
    from search.sr.dnas.select import best, candidate_fits, score_candidates

    space = SRSpace(max_blocks=3)
    net = SRSupernet(space, seed=1)
    with torch.no_grad():  # a collapsed C, as Adam leaves it: all mass on the narrowest width
        net.c_mask.logits.copy_(torch.tensor([4.0, 0.0, 0.0, 0.0, -4.0]))
    fits = candidate_fits(net, predict(s21), 20.0, 0.05, 0.5, "expected")
    assert fits[0][1] is False and fits[0][0].arch.channels == 8  # the plain derivation comes first
    widths = [f.arch.channels for f, fixed in fits if fixed]
    assert widths == sorted(set(widths), reverse=True) and 24 in widths
    assert len({f.arch for f, _ in fits}) == len(fits)
    assert all(0.95 * 20.0 <= f.latency_ms <= 20.0 for f, _ in fits[1:])  # the budget binds: within 5% under
    patches = sr.TrainPatches(scale=2, patch_hr=24, seed=0, val_images=1)
    val = [v for v in patches.val_set()][:1]
    recipe = sr.TrainRecipe(steps=2, batch_size=2, patch_hr=24, lr=5e-4, lr_final=1e-5, threads=1)
    scored = score_candidates(net, fits[:3], patches, val, recipe, log=lambda _: None)
    assert [s.steps for s in scored] == [2, 2, 2]
    assert all(20 < s.val_psnr < 45 for s in scored)
    assert best(scored).val_psnr == max(s.val_psnr for s in scored)
    # a deadline already passed: one step each (training polls its stop after a step), still scored
    assert [s.steps for s in score_candidates(net, fits[:2], patches, val, recipe, deadline=0.0,
                                              log=lambda _: None)] == [1, 1]


@pytest.mark.parametrize("arch_from", ["joint", "width"])
def test_logits_learn_from_the_phase_named_by_arch_from(s21, tmp_path, arch_from):
    """The default (joint): the width phase samples widths and trains only the weights, so a
    tight budget cannot collapse every width before depth is searched (16 blocks at 16 ms)."""
    space = SRSpace(max_blocks=2, m1=(8, 32, 8))
    patches = sr.TrainPatches(scale=2, patch_hr=24, seed=0, val_images=1)
    term = LatencyTerm(s21.torch_block_latency, None, 2.0, predict(s21)([space.largest()])[0])
    plan = SupernetPlan(warmup_steps=1, width_steps=3, joint_steps=0, batch_size=2, patch_hr=24,
                        arch_from=arch_from, eval_every=100, threads=1)
    net = SRSupernet(space, seed=1)
    logits = [p.detach().clone() for p in net.arch_parameters()]
    weights = [p.detach().clone() for p in net.weight_parameters()]
    train_supernet(net, patches, [], plan, term, tmp_path / "ck.pt", lambda *a: None)
    moved = any(not torch.equal(a, b.detach()) for a, b in zip(logits, net.arch_parameters()))
    assert moved == (arch_from == "width")
    assert any(not torch.equal(a, b.detach()) for a, b in zip(weights, net.weight_parameters()))
    with pytest.raises(ValueError, match="arch_from"):
        SupernetPlan(warmup_steps=1, width_steps=1, joint_steps=1, arch_from="warmup")


def test_final_training_can_start_from_given_weights():
    from search.sr.task import train_and_evaluate
    from spaces import WDSRBArch, WDSRBlock

    arch = WDSRBArch(2, 8, (WDSRBlock(16, 8),))
    init = sr.build_model(arch).state_dict()
    set5 = sr.load_eval_set(sr.DEFAULT_EVAL_ROOTS["set5"], 2)[:1]
    patches = sr.TrainPatches(scale=2, patch_hr=24, seed=0)
    recipe = sr.TrainRecipe(steps=1, batch_size=1, patch_hr=24, lr=1e-9, lr_final=0.0, threads=1)
    model, _ = train_and_evaluate(arch, recipe, patches, {"set5": set5}, "t", init_state=init)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, init[k], atol=1e-6), k  # one step at lr 1e-9 from init, not a fresh init


def test_estimators_say_whether_they_have_a_torch_form():
    """The seam dnas asks instead of probing attributes: the published S21 model's torch form sums
    to the estimator's own figure; a timed estimator has none, and says why."""
    from search.latency import make_estimator
    from search.settings import DeviceProfile

    phone = DeviceProfile("s21", "test", (360, 640), 33.3, "published", None)
    est = make_estimator(phone, {"kind": "auto", "allow_extrapolation": False}, 2, sr.build_model)
    view, why = est.torch_latency()
    assert view is not None and view.fixed_ms is None and why == ""
    rows = torch.tensor(SPACE.largest().block_vectors(), dtype=torch.float32)
    assert float(view.block_ms(rows).sum()) == pytest.approx(est.latency_ms(SPACE.largest()), rel=1e-4)
    host = DeviceProfile("cpu", "this host", (24, 24), 10.0, "measured", 1)
    timed = make_estimator(host, {"kind": "measured", "backend": "torch-cpu", "allow_extrapolation": False}, 2, sr.build_model)
    assert timed.predictor is None and timed.torch_latency()[0] is None and "timed" in timed.torch_latency()[1]

"""Each built-in method runs on a tiny task and moves the model the way its rule says."""

import pytest
import torch

from tests.helpers import cell, forget_loss, tiny_runner


def states_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("trained", [False, True])
def test_the_sessions_tiny_originals_are_loaded_not_trained(tmp_path, monkeypatch, trained):
    runner = tiny_runner(tmp_path, ["original"], trained=trained)
    monkeypatch.setattr("benchmark.run.artefacts.fit", lambda *args: pytest.fail("the original was trained"))
    runner.artefacts.original(runner.spec.tasks[0], 0)


def test_original_changes_nothing(tmp_path):
    runner = tiny_runner(tmp_path, ["original"])
    method, _ = runner.cells.unlearn(cell(runner, "original"))
    assert not method.trains()
    assert states_equal(method.model, runner.artefacts.original(method.data.task, 0))


def test_retrain_starts_from_the_initial_weights_and_trains_on_retain(tmp_path, monkeypatch):
    runner = tiny_runner(tmp_path, ["retrain"])
    c = cell(runner, "retrain")
    method = runner.cells.build_method(c)
    assert method.is_gold and method.hparams.epochs == 1  # the tiny recipe
    seen = []
    monkeypatch.setattr(type(method), "training_step", lambda self, b, i: seen.append(b.index.clone()) or self.cross_entropy(b))
    method.unlearn()
    assert states_equal(method.model, method.data.initial_model())
    from benchmark.run.fitting import fit

    fit(runner.spec, method, runner.cells.report, "t")
    rows = torch.cat(seen)
    assert set(rows.tolist()) <= set(method.data.retain_idx.tolist())
    assert not set(rows.tolist()) & set(method.data.forget_idx.tolist())


def test_finetune_trains_in_train_mode(tmp_path):
    runner = tiny_runner(tmp_path, ["finetune"])
    method, _ = runner.cells.unlearn(cell(runner, "finetune"))
    original = runner.artefacts.original(method.data.task, 0)
    bn = [(n, b) for n, b in method.model.named_buffers() if n.endswith("running_mean")]
    before = dict(original.named_buffers())
    # BatchNorm statistics moved: the copy of the (eval-mode) original was trained in train mode
    assert any(not torch.equal(b, before[n]) for n, b in bn)
    assert all(not p.requires_grad for p in method.original.parameters())
    assert states_equal(method.original, original)  # the frozen reference never moves


@pytest.mark.parametrize(
    "name, hparams", [("neggrad", {"epochs": 5, "lr": 0.01}), ("neggrad_plus", {"beta": 0.5, "epochs": 3})]
)
def test_gradient_ascent_raises_the_forget_loss(tmp_path, name, hparams):
    runner = tiny_runner(tmp_path, [name], hparams={name: hparams})
    method, _ = runner.cells.unlearn(cell(runner, name))
    assert forget_loss(method.model, method) > forget_loss(method.original, method)


def test_random_label_uses_wrong_labels_and_lowers_forget_fit(tmp_path):
    runner = tiny_runner(tmp_path, ["random_label"], hparams={"random_label": {"epochs": 2}})
    method, _ = runner.cells.unlearn(cell(runner, "random_label"))
    y = method.data.dataset.train.y
    assert (method.wrong_labels.cpu() != y).all()
    assert forget_loss(method.model, method) > forget_loss(method.original, method)


def kl_to(method, teacher, part):
    """Mean KL(teacher ‖ method.model) over a part, eval mode."""
    from benchmark.losses import distillation_kl

    method.model.eval()
    with torch.no_grad():
        total, n = 0.0, 0
        for b in method.batches(part, 64):
            total += distillation_kl(method.model(b.x), teacher(b.x)).item() * len(b.x)
            n += len(b.x)
    return total / n


def test_cf_k_leaves_the_frozen_blocks_bit_identical(tmp_path):
    runner = tiny_runner(tmp_path, ["cf_k"])
    method, _ = runner.cells.unlearn(cell(runner, "cf_k"))
    original = runner.artefacts.original(method.data.task, 0)
    tail = set(method.model.tail_parameters(1))
    assert tail and all(n.startswith(("backbone.layer4.", "head.")) for n in tail)
    before, after = original.state_dict(), method.model.state_dict()
    owners = {n.rsplit(".", 1)[0] for n in tail}
    frozen = [n for n in after if n.rsplit(".", 1)[0] not in owners]
    assert frozen and all(torch.equal(after[n], before[n]) for n in frozen)  # weights and BN statistics
    assert any(not torch.equal(after[n], before[n]) for n in tail)


def test_eu_k_reinitialises_then_retrains_the_tail_only(tmp_path):
    runner = tiny_runner(tmp_path, ["eu_k"], hparams={"eu_k": {"epochs": 0}})
    method, _ = runner.cells.unlearn(cell(runner, "eu_k"))
    initial, original = method.data.initial_model().state_dict(), runner.artefacts.original(method.data.task, 0).state_dict()
    after = method.model.state_dict()
    tail = set(method.model.tail_parameters(1))
    assert all(torch.equal(after[n], initial[n]) for n in tail)  # epochs=0: just the reset
    assert all(torch.equal(after[n], original[n]) for n in after if n.startswith("backbone.layer1."))


def test_salun_updates_only_masked_weights(tmp_path):
    runner = tiny_runner(tmp_path, ["salun"], hparams={"salun": {"gamma": 0.3}})
    method, _ = runner.cells.unlearn(cell(runner, "salun"))
    original = dict(runner.artefacts.original(method.data.task, 0).named_parameters())
    kept = changed = 0
    for (name, p), (_, mask) in zip(method.model.named_parameters(), ((None, m) for m in method._masks)):
        frozen = mask == 0
        assert torch.equal(p.detach()[frozen], original[name].detach()[frozen]), name
        kept += int(frozen.sum())
        changed += int((p.detach() != original[name].detach()).sum())
    total = sum(m.numel() for m in method._masks)
    assert abs(sum(int(m.sum()) for m in method._masks) / total - 0.3) < 0.01
    assert changed > 0 and kept > 0


def test_scrub_moves_away_from_the_teacher_on_forget_more_than_on_retain(tmp_path):
    runner = tiny_runner(tmp_path, ["scrub"], trained=True, hparams={"scrub": {"epochs": 3, "msteps": 3, "lr": 0.01}})
    method, _ = runner.cells.unlearn(cell(runner, "scrub"))
    on_forget, on_retain = kl_to(method, method.original, "forget"), kl_to(method, method.original, "retain")
    assert on_forget > 1.5 * on_retain and on_forget > 0.01


def test_ssd_changes_only_the_weights_it_selects(tmp_path):
    runner = tiny_runner(tmp_path, ["ssd"], hparams={"ssd": {"alpha": 2.0}})
    method = runner.cells.build_method(cell(runner, "ssd"))
    forget, train = method.importance("forget"), method.importance("train")
    before = [p.detach().clone() for p in method.model.parameters()]
    method.unlearn()
    n_selected = 0
    for p, b, f, d in zip(method.model.parameters(), before, forget, train):
        selected = f > 2.0 * d
        n_selected += int(selected.sum())
        assert torch.equal(p.detach()[~selected], b[~selected])
        expected = b[selected] * torch.clamp(d[selected] / f[selected], max=1.0)
        assert torch.allclose(p.detach()[selected], expected)
    assert n_selected > 0 and not method.trains()


def test_boundary_shrink_pulls_forget_rows_to_the_fgsm_labels(tmp_path):
    from methods.boundary_shrink import fgsm

    runner = tiny_runner(tmp_path, ["boundary_shrink"], hparams={"boundary_shrink": {"lr": 0.05, "epochs": 5}})
    method, _ = runner.cells.unlearn(cell(runner, "boundary_shrink"))
    method.model.eval()
    agree_before = agree_after = 0
    for b in method.batches("forget", 64):
        target = method.original(fgsm(method.original, b.x, b.y, 0.1)).argmax(1)
        agree_before += int((method.original(b.x).argmax(1) == target).sum())
        agree_after += int((method.model(b.x).argmax(1) == target).sum())
    assert agree_after > agree_before


def test_boundary_expanding_prunes_the_shadow_class(tmp_path):
    runner = tiny_runner(tmp_path, ["boundary_expanding"], hparams={"boundary_expanding": {"lr": 0.05, "epochs": 3}})
    method, _ = runner.cells.unlearn(cell(runner, "boundary_expanding"))
    assert method.model.head.out_features == 2 and method.shadow_head.out_features == 3
    assert torch.equal(method.model.head.weight, method.shadow_head.weight[:2])
    original = runner.artefacts.original(method.data.task, 0)
    assert not torch.equal(method.model.backbone.state_dict()["layer4.0.conv1.weight"], original.backbone.state_dict()["layer4.0.conv1.weight"])


def test_l1_sparse_schedule_and_sparsity(tmp_path):
    settings = {"epochs": 2, "lr": 0.05}
    runner = tiny_runner(tmp_path, ["l1_sparse", "finetune"], hparams={"l1_sparse": {**settings, "alpha": 0.01}, "finetune": settings})
    sparse, _ = runner.cells.unlearn(cell(runner, "l1_sparse"))
    plain, _ = runner.cells.unlearn(cell(runner, "finetune"))
    l1 = lambda m: sum(p.abs().sum().item() for p in m.model.parameters())
    assert l1(sparse) < l1(plain)
    assert sparse.l1_weight() == 0.01 * (1 - sparse.current_epoch / 2)


def test_bad_teacher_pulls_forget_outputs_towards_the_random_teacher(tmp_path):
    runner = tiny_runner(tmp_path, ["bad_teacher"], trained=True, hparams={"bad_teacher": {"epochs": 2, "lr": 0.05}})
    method = runner.cells.build_method(cell(runner, "bad_teacher"))
    before = kl_to(method, method.bad_teacher, "forget")
    method, _ = runner.cells.unlearn(cell(runner, "bad_teacher"))
    assert kl_to(method, method.bad_teacher, "forget") < before
    assert all(not p.requires_grad for p in method.bad_teacher.parameters())


def test_the_same_cell_twice_gives_the_same_model(tmp_path):
    runner = tiny_runner(tmp_path, ["random_label"])
    a, _ = runner.cells.unlearn(cell(runner, "random_label"))
    b, _ = runner.cells.unlearn(cell(runner, "random_label"))
    assert states_equal(a.model, b.model)


def test_neggrad_with_hard_weights_is_plain_gradient_ascent(tmp_path):
    runner = tiny_runner(tmp_path, ["neggrad"], hparams={"neggrad": {"epochs": 2, "lr": 0.01}})
    plain, _ = runner.cells.unlearn(cell(runner, "neggrad"))
    runner.spec.hparams["neggrad"]["weights"] = "hard"
    weighted, _ = runner.cells.unlearn(cell(runner, "neggrad"))
    assert weighted.sample_weights.active
    assert states_equal(plain.model, weighted.model)
    assert not states_equal(plain.model, runner.artefacts.original(plain.data.task, 0))


def test_finetune_with_soft_weights_weights_only_the_forget_rows(tmp_path):
    runner = tiny_runner(tmp_path, ["finetune"], trained=True, hparams={"finetune": {"weights": "soft"}})
    method, _ = runner.cells.unlearn(cell(runner, "finetune"))
    w = method.sample_weights.by_row
    outside = torch.ones(len(w), dtype=torch.bool)
    outside[method.data.forget_idx] = False
    assert torch.all(w[outside] == 0) and torch.any(w[method.data.forget_idx] != 0)
    runner.spec.hparams["finetune"]["weights"] = "none"
    plain, _ = runner.cells.unlearn(cell(runner, "finetune"))
    assert not states_equal(plain.model, method.model)

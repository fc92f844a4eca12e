"""Each built-in method runs on a tiny task and moves the model the way its rule says."""

import torch

from tests.helpers import cell, forget_loss, tiny_runner


def states_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_original_changes_nothing(tmp_path):
    runner = tiny_runner(tmp_path, ["original"])
    method, _ = runner.unlearn(cell(runner, "original"))
    assert not method.trains()
    assert states_equal(method.model, runner.original(method.data.task, 0))


def test_retrain_starts_from_the_initial_weights_and_trains_on_retain(tmp_path, monkeypatch):
    runner = tiny_runner(tmp_path, ["retrain"])
    c = cell(runner, "retrain")
    method = runner.build_method(c)
    assert method.is_gold and method.hparams.epochs == 1  # the tiny recipe
    seen = []
    monkeypatch.setattr(type(method), "training_step", lambda self, b, i: seen.append(b.index.clone()) or self.cross_entropy(b))
    method.unlearn()
    assert states_equal(method.model, method.data.initial_model())
    from benchmark.runner import _fit

    _fit(runner.spec, method, runner.report, "t")
    rows = torch.cat(seen)
    assert set(rows.tolist()) <= set(method.data.retain_idx.tolist())
    assert not set(rows.tolist()) & set(method.data.forget_idx.tolist())


def test_finetune_trains_in_train_mode(tmp_path):
    runner = tiny_runner(tmp_path, ["finetune"])
    method, _ = runner.unlearn(cell(runner, "finetune"))
    original = runner.original(method.data.task, 0)
    bn = [(n, b) for n, b in method.model.named_buffers() if n.endswith("running_mean")]
    before = dict(original.named_buffers())
    # BatchNorm statistics moved: the copy of the (eval-mode) original was trained in train mode
    assert any(not torch.equal(b, before[n]) for n, b in bn)
    assert all(not p.requires_grad for p in method.original.parameters())
    assert states_equal(method.original, original)  # the frozen reference never moves


def test_neggrad_raises_the_forget_loss(tmp_path):
    runner = tiny_runner(tmp_path, ["neggrad"], hparams={"neggrad": {"epochs": 5, "lr": 0.01}})
    method, _ = runner.unlearn(cell(runner, "neggrad"))
    assert forget_loss(method.model, method) > forget_loss(method.original, method)


def test_random_label_uses_wrong_labels_and_lowers_forget_fit(tmp_path):
    runner = tiny_runner(tmp_path, ["random_label"], hparams={"random_label": {"epochs": 2}})
    method, _ = runner.unlearn(cell(runner, "random_label"))
    y = method.data.dataset.train.y
    assert (method.wrong_labels.cpu() != y).all()
    assert forget_loss(method.model, method) > forget_loss(method.original, method)

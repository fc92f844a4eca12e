"""The data path: loaders read rows in the order torch's samplers drew before, wherever the
rows live (host, memory-mapped, streamed by a reading thread, resident on a GPU)."""

from __future__ import annotations

import pickle
import threading
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, WeightedRandomSampler

from benchmark import placement as device_module
from benchmark.dataset import make_loader
from benchmark.placement import prefetch
from benchmark.source import DatasetWriter, read_dataset
from tasks.shapes import ShapesSource

SOURCE = ShapesSource(n_train=70, n_val=8, n_test=8)
DATA = SOURCE.build()
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def reference_positions(n: int, batch_size: int, mode: str, seed: int, epochs: int, drop_last: bool) -> list[list[int]]:
    """The batches torch's samplers under a BatchSampler drew (the loader's old code), epoch after epoch."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.linspace(0.5, 2.0, n).double()
    sampler = {
        "shuffle": lambda: RandomSampler(range(n), generator=generator),
        "weights": lambda: WeightedRandomSampler(weights, n, replacement=True, generator=generator),
        "order": lambda: SequentialSampler(range(n)),
    }[mode]()
    batches = BatchSampler(sampler, batch_size, drop_last)
    return [list(batch) for _ in range(epochs) for batch in batches]


def loader_for(dataset, indices, batch_size: int, mode: str, seed: int):
    weights = torch.linspace(0.5, 2.0, len(indices)) if mode == "weights" else None
    return make_loader(dataset, "train", indices, batch_size=batch_size, shuffle=mode == "shuffle", seed=seed, weights=weights)


@pytest.mark.parametrize("mode", ["shuffle", "weights", "order"])
@pytest.mark.parametrize("n, batch_size", [(33, 8), (32, 8), (30, 8), (7, 16)])
def test_order_is_the_samplers(mode: str, n: int, batch_size: int):
    """Same batches as RandomSampler / WeightedRandomSampler / SequentialSampler under a
    BatchSampler from the same seed, over three epochs (the generator's stream included)."""
    indices = torch.arange(70)[-n:].flip(0)
    loader = loader_for(DATA, indices, batch_size, mode, seed=3)
    drop_last = mode != "order" and n % batch_size == 1
    expected = reference_positions(n, batch_size, mode, 3, 3, drop_last)
    got = [b.index for _ in range(3) for b in loader]
    assert [t.tolist() for t in got] == [indices[p].tolist() for p in expected]
    assert len(loader) == len(expected) // 3


def test_global_rng_use_is_unchanged():
    """An epoch draws from the global generator as a DataLoader did (its base seed), and only so:
    augmentation draws after it are those of before."""
    indices = torch.arange(70)
    torch.manual_seed(0)
    list(loader_for(DATA, indices, 16, "shuffle", seed=1))
    ours = torch.get_rng_state()
    torch.manual_seed(0)
    list(DataLoader(range(70), batch_size=16, sampler=RandomSampler(range(70), generator=torch.Generator().manual_seed(1))))
    assert torch.equal(ours, torch.get_rng_state())


def batches(dataset, mode: str = "shuffle", epochs: int = 2) -> list:
    loader = loader_for(dataset, torch.arange(3, 70), 16, mode, seed=5)
    return [b for _ in range(epochs) for b in loader]


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert all(torch.equal(s.cpu(), t.cpu()) for s, t in zip(x, y))


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory):
    """DATA written to a cache and read back memory-mapped, as the runner reads it."""
    root = tmp_path_factory.mktemp("cache")
    SOURCE.write(DatasetWriter(root))
    return read_dataset(root, SOURCE.name, SOURCE.fingerprint())


@pytest.mark.parametrize("mode", ["shuffle", "weights", "order"])
def test_streaming_gives_the_same_batches(mapped, mode: str):
    """A memory-mapped dataset streamed by the reading thread (no pinning on the CPU) gives the
    batches of the plain loader over the in-memory dataset."""
    streamed = mapped.placed("cpu", resident=False)
    assert_same(batches(streamed, mode), batches(DATA, mode))
    assert streamed.feed("train").stream_to == torch.device("cpu")


def test_cpu_placement_changes_nothing():
    assert DATA.placed("cpu") is DATA and DATA.feed("train").stream_to is None


def test_building_a_loader_touches_no_device():
    """Loaders built in a process that never reads them (the scheduler, validation) place
    nothing: here 'cuda' is named on a machine that may have none."""
    placed = DATA.placed("cuda")
    loader = make_loader(placed, "train", None, batch_size=8, shuffle=True)
    assert len(loader) == 9 and placed._placed == {}
    assert pickle.loads(pickle.dumps(loader.dataset)).dataset._placed == {}


def test_a_stopped_stream_ends_its_thread():
    threads = threading.active_count()
    loader = make_loader(DATA.placed("cpu", resident=False), "train", None, batch_size=4, shuffle=True)
    for _, _ in zip(range(2), loader):
        pass
    assert threading.active_count() == threads


def test_a_failing_read_raises_in_the_consumer():
    def broken():
        yield (torch.zeros(1),)
        raise OSError("disk gone")

    stream = prefetch(broken(), torch.device("cpu"))
    assert torch.equal(next(stream)[0], torch.zeros(1))
    with pytest.raises(OSError, match="disk gone"):
        next(stream)


def test_residency_leaves_the_reserve_free(monkeypatch: pytest.MonkeyPatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=80 * gib))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (60 * gib, 80 * gib))
    cuda = torch.device("cuda")
    assert device_module.reserve_bytes(cuda) == 20 * gib  # a quarter of 80 GiB
    assert device_module.fits(40 * gib, cuda) and not device_module.fits(41 * gib, cuda)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=16 * gib))
    assert device_module.reserve_bytes(cuda) == 8 * gib  # at least 8 GiB


@CUDA
@pytest.mark.parametrize("resident", [True, False])
def test_gpu_feeds_give_the_cpu_batches(mapped, resident: bool):
    """Resident on the GPU (indexed there) or streamed through pinned memory: the CPU's batches."""
    placed = mapped.placed("cuda", resident=resident)
    got = batches(placed)
    assert all(t.is_cuda for b in got for t in b)
    assert placed.feed("train").split.x.is_cuda == resident
    assert_same(got, batches(DATA))


def test_compiled_model_keeps_its_weights_and_copies(monkeypatch: pytest.MonkeyPatch):
    """``ModelSpec.compile``: the same logits, parameter names and state; a copy compiles its own
    backbone (never the original's)."""
    import copy

    from benchmark import model as model_module

    monkeypatch.setattr(model_module, "COMPILE_OPTIONS", {"backend": "eager"})  # dynamo without code generation
    compiled = model_module.build_model(model_module.ModelSpec(compile=True), 2, 0)
    plain = model_module.build_model(model_module.ModelSpec(), 2, 0)
    x = torch.rand(4, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(compiled(x), plain(x), atol=1e-5)
        twin = copy.deepcopy(compiled)
        twin.head.bias.add_(1.0)
        next(twin.backbone.parameters()).mul_(0.0)
        assert not torch.allclose(twin(x), compiled(x)) and torch.allclose(compiled(x), plain(x), atol=1e-5)
    assert list(compiled.state_dict()) == list(plain.state_dict()) and "_compiled" not in pickle.loads(pickle.dumps(compiled)).__dict__

"""The training loop: seeded runs repeat exactly, and a resumed run ends where an uninterrupted one does."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from plusls.training.loop import TrainConfig, lr_at, train


class TinyRegressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))

    def forward(self, x, y):
        return SimpleNamespace(loss=torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y))


def batch_at(step: int):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(8, 4, generator=g)
    return {"x": x, "y": x.sum(-1)}, 8


class Killed(Exception):
    pass


def run(out, steps: int, lines: list[str], kill_at: int | None = None) -> tuple[dict, dict]:
    torch.manual_seed(123)  # a different init each time unless the loop seeds it: it does, from cfg.seed
    model = TinyRegressor()
    cfg = TrainConfig(out_dir=str(out), max_steps=steps, lr=1e-2, min_lr=1e-3, warmup_steps=2, log_every=2,
                      checkpoint_every=2, seed=7, device="cpu", threads=1)

    def batches(step: int):
        if step == kill_at:
            raise Killed  # as if the process died here, after the checkpoint of step kill_at
        return batch_at(step)

    result = train(cfg, model, batches, log=lines.append)
    return result, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    lines: list[str] = []
    full, full_state = run(tmp_path / "a", 20, lines)
    assert full["steps"] == 20 and full["history"][-1]["loss"] < full["history"][0]["loss"]
    # progress: loss, tokens/s and ETA on every logged step
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 10 and all("loss" in p and "tok/s" in p and "ETA" in p for p in progress)

    with pytest.raises(Killed):
        run(tmp_path / "b", 20, [], kill_at=10)
    resumed_lines: list[str] = []
    resumed, resumed_state = run(tmp_path / "b", 20, resumed_lines)
    assert any("resumed from" in line and "step 10" in line for line in resumed_lines)
    assert resumed["steps"] == 20
    for k in full_state:
        assert torch.equal(full_state[k], resumed_state[k]), k


def test_same_seed_same_weights(tmp_path):
    _, a = run(tmp_path / "a", 4, [])
    _, b = run(tmp_path / "b", 4, [])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(out_dir="x", max_steps=100, lr=1e-3, min_lr=1e-4, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4)
    timed = TrainConfig(out_dir="x", max_steps=10_000, lr=1e-3, min_lr=1e-4, warmup_steps=10, max_minutes=1)
    assert lr_at(20, timed, elapsed_s=60) == pytest.approx(1e-4)  # a time budget decays by the clock


def test_batches_walk_seeded_epochs_and_cross_their_boundary_cleanly():
    from plusls.training.loop import batch_indices

    n, size = 10, 4
    rows = [i for step in range(5) for i in batch_indices(n, size, 0, step)]  # 20 rows: exactly two epochs
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:]) == list(range(10))
    assert rows[:10] != rows[10:]  # each epoch its own order
    assert batch_indices(n, size, 0, 2) == batch_indices(n, size, 0, 2)  # a pure function of the step
    assert batch_indices(n, size, 1, 0) != batch_indices(n, size, 0, 0)
    assert sorted(batch_indices(3, 8, 0, 0)) == [0, 1, 2]  # never more rows than the data has

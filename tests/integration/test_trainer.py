import json
import re

import pytest
import torch

from learntolearn.engine.config import TrainConfig
from learntolearn.engine.trainer import Trainer
from learntolearn.errors import ConfigError

SMALL = dict(
    dataset="synthetic",
    split="default",
    image_size=16,
    ways=5,
    shots=1,
    queries=3,
    train_ways=5,
    val_every=10,
    val_episodes=20,
    test_episodes=30,
    checkpoint_every=10,
    lr=1e-3,
)


def run(tmp_path, name, steps, resume=False):
    trainer = Trainer(TrainConfig.create(**SMALL, steps=steps), tmp_path / name, resume=resume, progress=False)
    trainer.train()
    return trainer


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_stopped_run_resumed_ends_exactly_like_an_uninterrupted_one(tmp_path):
    whole = run(tmp_path, "whole", 30)
    first = run(tmp_path, "parts", 20)
    del first
    resumed = run(tmp_path, "parts", 30, resume=True)
    for a, b in zip(whole.algorithm.state_dict().values(), resumed.algorithm.state_dict().values()):
        assert torch.equal(a, b)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("train_seconds", "train_cpu_seconds")} for r in rows]
    assert strip(metrics(tmp_path / "whole")) == strip(metrics(tmp_path / "parts"))
    result = resumed.test()
    saved = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(result.mean) and saved["steps"] == 30


def test_resume_drops_metrics_logged_after_the_last_checkpoint(tmp_path):
    run(tmp_path, "r", 20)
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 21, "loss": 1.0}) + "\n")
    resumed = Trainer(TrainConfig.create(**SMALL, steps=20), tmp_path / "r", resume=True, progress=False)
    assert resumed.step == 20 and max(r["step"] for r in metrics(tmp_path / "r")) == 20


def test_existing_run_folder_is_not_overwritten(tmp_path):
    run(tmp_path, "r", 10)
    with pytest.raises(FileExistsError, match="already holds a run; pass resume=True"):
        Trainer(TrainConfig.create(**SMALL, steps=10), tmp_path / "r", progress=False)
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        Trainer(TrainConfig.create(**SMALL, steps=10), tmp_path / "nothing", resume=True, progress=False)


def test_config_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(KeyError, match="unknown config key.*shot.*valid keys"):
        TrainConfig.from_dict({"shot": 1})
    with pytest.raises(ConfigError, match="episodes key 'ways' must be int"):
        TrainConfig.create(ways="5")
    with pytest.raises(KeyError, match="unknown algorithm 'mammal'; valid algorithms: .*protonet"):
        TrainConfig.create(algorithm="mammal")


def test_a_nan_loss_stops_training_with_advice(tmp_path):
    trainer = Trainer(TrainConfig.create(**SMALL, steps=5), tmp_path / "nan", progress=False)
    with torch.no_grad():
        next(trainer.algorithm.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="meta-loss became nan at step 1; lower the learning rate"):
        trainer.train()


def test_early_stopping_ends_the_run_after_patience_validations_without_a_new_best(tmp_path):
    config = TrainConfig.create(**{**SMALL, "val_every": 1, "val_episodes": 4, "patience": 2}, steps=200)
    trainer = Trainer(config, tmp_path / "r", progress=False)
    trainer.train()
    rows = metrics(tmp_path / "r")
    assert trainer.step < 200 and rows[-1]["early_stop"] is True
    vals = [r["val_accuracy"] for r in rows if "val_accuracy" in r]
    assert max(vals[-2:]) <= max(vals[:-2]) and rows[-1]["best_val_accuracy"] == max(vals)
    resumed = Trainer(config, tmp_path / "r", resume=True, progress=False)
    assert resumed.step == trainer.step


def test_chunked_backward_gives_the_same_maml_meta_gradient():
    from torch import nn

    from learntolearn.algorithms import MAML
    from learntolearn.engine.trainer import MetaBatchChunks, accumulate_meta_gradient, saved_graph_bytes
    from learntolearn.types import Task

    torch.manual_seed(0)
    maml = MAML(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), inner_lr=0.3, inner_steps=2).double()
    labels = torch.arange(3).repeat_interleave(2)
    tasks = [
        Task(
            torch.randn(6, 4, dtype=torch.float64),
            labels,
            torch.randn(6, 4, dtype=torch.float64),
            labels,
            torch.arange(3),
        )
        for _ in range(6)
    ]
    one_task = saved_graph_bytes(maml.meta_loss(tasks[:1]).loss)
    assert saved_graph_bytes(maml.meta_loss(tasks[:3]).loss) > 2 * one_task > 0
    # room for two tasks' graphs (the first meta-batch backpropagates 1 + 2 + 2 + 1 tasks, later ones 2 + 2 + 2)
    two, roomy = MetaBatchChunks(0, 2.5 * one_task / 2**20), MetaBatchChunks(0, 1)
    grads = []
    for chunks in (6, 4, 1, two, two, roomy, MetaBatchChunks(0, 0)):
        maml.zero_grad()
        loss, _ = accumulate_meta_gradient(maml, tasks, chunks)
        grads.append((loss, [p.grad.clone() for p in maml.parameters()]))
    for loss, g in grads[1:]:
        assert abs(loss - grads[0][0]) < 1e-12
        for a, b in zip(g, grads[0][1]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert two.size(maml, tasks) == 2 and roomy.size(maml, tasks) == 6


def test_saved_graph_bytes_counts_each_saved_storage_once():
    from learntolearn.engine.trainer import saved_graph_bytes

    w = torch.randn(1000, requires_grad=True)
    assert saved_graph_bytes(w.exp().sum()) == 4000  # exp saves its result
    shared = w.exp()
    assert saved_graph_bytes((shared.sin() + shared.cos()).sum()) == 4000  # exp, sin and cos all save one storage
    assert saved_graph_bytes((w.exp() + w.sin()).sum()) == 8000  # exp's result and sin's input
    assert saved_graph_bytes((w * 2).sum()) <= 8  # a product by a constant saves the constant alone


def test_metric_learners_backpropagate_the_whole_meta_batch_whatever_the_budget():
    from learntolearn.algorithms import PrototypicalNetworks
    from learntolearn.engine.trainer import MetaBatchChunks
    from learntolearn.types import Task

    labels = torch.arange(2).repeat_interleave(2)
    task = Task(torch.randn(4, 3), labels, torch.randn(4, 3), labels, torch.arange(2))
    protonet = PrototypicalNetworks(torch.nn.Linear(3, 4))
    assert MetaBatchChunks(0, 1).size(protonet, [task] * 5) == 5
    assert MetaBatchChunks(2, 1).size(protonet, [task] * 5) == 2  # an explicit chunk is the user's choice


def test_linear_schedule_and_adam_reptile_resume_exactly(tmp_path):
    """Reptile's Omniglot recipe: the outer step anneals linearly to 0, and a resumed run restores the inner
    Adam moments with the weights, ending exactly where an uninterrupted run ends."""

    config = TrainConfig.create(
        **{**SMALL, "lr": 1.0},
        algorithm="reptile",
        outer_optimizer="sgd",
        lr_schedule="linear",
        inner_optimizer="adam",
        inner_lr=1e-3,
        inner_steps=2,
        test_inner_steps=3,
        steps=20,
    )
    whole = Trainer(config, tmp_path / "whole", progress=False)
    whole.train()
    rates = [r["lr"] for r in metrics(tmp_path / "whole") if "lr" in r]
    assert rates[0] == pytest.approx(1 - 1 / 20) and rates[9] == pytest.approx(0.5) and rates[-1] == pytest.approx(0)
    first = Trainer(config, tmp_path / "parts", progress=False)
    first.config = config.with_keys(steps=10)  # stop half-way, as a killed run would after its checkpoint
    first.train()
    resumed = Trainer(config, tmp_path / "parts", resume=True, progress=False)
    resumed.train()
    state = resumed.algorithm.state_dict()
    assert int(state["inner_adam_steps"]) == 20 * config.run.meta_batch * config.algorithm_settings.inner_steps, (
        "validation leaves them"
    )
    for name, value in whole.algorithm.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_a_run_folder_in_use_is_refused_naming_the_process(tmp_path):
    import os

    from learntolearn.errors import LockedError

    first = Trainer(TrainConfig.create(**SMALL, steps=10), tmp_path / "r", progress=False)
    with pytest.raises(LockedError, match=f"run folder .*r is in use by process {os.getpid()}"):
        Trainer(TrainConfig.create(**SMALL, steps=10), tmp_path / "r", progress=False)
    first.train()  # releases it once its last checkpoint is written
    Trainer(TrainConfig.create(**SMALL, steps=20), tmp_path / "r", resume=True, progress=False).run()


def test_validation_results_reach_the_console_and_every_bar_knows_its_total(tmp_path, capsys):
    from learntolearn.testing import tiny_config

    Trainer(tiny_config("protonet"), tmp_path / "run", progress=True).run()
    err = capsys.readouterr().err
    assert "step 2: validation " in err and "over 4 episodes (best so far)" in err
    assert "step 4: validation " in err
    assert re.search(r"validating: +\d+%\|[^|]*\| \d/4 ", err), "the validation bar counts to its total"
    from learntolearn.data import EpisodeSet
    from learntolearn.data.synthetic import load_synthetic
    from learntolearn.engine.evaluate import evaluate

    data = load_synthetic(subset="test", image_size=16)
    tasks = list(EpisodeSet.generate(data, 5, 1, 3, 3, seed=0).tasks(data))
    trainer_model = Trainer(tiny_config("protonet"), tmp_path / "other", progress=False).algorithm
    evaluate(trainer_model, tasks)
    assert re.search(r"evaluating: +\d+%\|[^|]*\| \d/3 ", capsys.readouterr().err), "a list gives the bar its total"


def test_a_cpu_budget_stops_at_the_first_validation_after_it_and_a_rerun_trains_no_further(tmp_path, monkeypatch):
    import learntolearn.engine.trainer as trainer_module

    clock = iter(range(10**6))
    monkeypatch.setattr(trainer_module, "cpu_seconds", lambda: float(next(clock)))  # each step costs one second
    config = TrainConfig.create(**{**SMALL, "checkpoint_every": 100}, steps=50)
    trainer = Trainer(config, tmp_path / "r", progress=False)
    trainer.train(cpu_budget_seconds=12)  # spent during step 12; validations every 10 steps
    assert trainer.step == 20 and trainer.train_cpu_seconds == 20
    rows = metrics(tmp_path / "r")
    assert rows[-1] == {"step": 20, "cpu_budget_spent": 20.0}
    assert any("val_accuracy" in r for r in rows if r["step"] == 20)
    again = Trainer(config, tmp_path / "r", resume=True, progress=False)
    assert again.step == 20, "the step where the budget ran out is checkpointed (checkpoint_every is 100)"
    again.train(cpu_budget_seconds=12)
    assert again.step == 20 and metrics(tmp_path / "r") == rows
    larger = Trainer(config, tmp_path / "r", resume=True, progress=False)
    larger.train(cpu_budget_seconds=25)  # continues to the validation after the larger budget
    assert larger.step == 30 and metrics(tmp_path / "r")[-1] == {"step": 30, "cpu_budget_spent": 30.0}

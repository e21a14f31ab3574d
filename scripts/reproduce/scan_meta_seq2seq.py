"""Meta seq2seq (Lake 2019) and its seq2seq baseline on SCAN: can a network use "jump" in new combinations
after seeing it only on its own?

    python scripts/reproduce/scan_meta_seq2seq.py --data-root ../shared/data [--episodes 10000 --seed 0]

Meta-training episodes give the four primitives a random permutation of their actions (never SCAN's own).
``--protocol lake2019`` (the default) follows the authors' released code for "adding a new primitive by
permutation": every SCAN command is a candidate, its primitive words renamed by a random permutation, 20
of them are study examples and 20 others queries, the study examples are also queries (the paper's
support loss), 2-layer LSTMs of 200 units, dropout 0.5, Adam at 1e-3 divided by 10 every 5,000 of 10,000
episodes. So the network sees "jump" in every construction, but never with all four of SCAN's meanings.
``--protocol primitives-alone`` is stricter: study examples are the primitives alone and queries come from
the split's training set, where "jump" appears only alone. At test SCAN's meanings hold: the four
primitives alone are the study examples and every test command a query, decoded greedily; a command
counts when its whole action sequence is right. Resumable: a checkpoint (model, optimiser, random states,
step) is written atomically every --checkpoint-every episodes into --run; rerunning continues from it.
``--method seq2seq`` trains the same network without its memory on batches of the split's training
commands, the standard seq2seq baseline. Writes results/scan-<method>[-<protocol>]-<split>-seed<seed>.json
with per-command correctness and provenance.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from learntolearn.compositional.meta_seq2seq import MetaSeq2Seq, pad
from learntolearn.data.scan import PRIMITIVES, PrimitiveRemapEpisodes, Vocabulary, load_scan
from learntolearn.engine.provenance import provenance
from learntolearn.files import load_tensors, save_tensors, write_json

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="addprim_jump")
    parser.add_argument(
        "--method",
        choices=["meta-seq2seq", "seq2seq"],
        default="meta-seq2seq",
        help="seq2seq: the same network without the memory, trained on batches of training commands (the baseline).",
    )
    parser.add_argument("--protocol", choices=["lake2019", "primitives-alone"], default="lake2019")
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--study", type=int, default=20, help="Study examples per episode (lake2019 protocol).")
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay-every", type=int, default=5_000, help="Divide the learning rate by 10 this often.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument(
        "--run", type=Path, default=None, help="Checkpoint folder (default: runs/scan-<method>-<split>-seed<seed>)."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    method = args.method if args.method == "seq2seq" else f"{args.method}-{args.protocol}"
    name = f"scan-{method}-{args.split}-seed{args.seed}"
    run = args.run or ROOT / "runs" / name
    train, test = (load_scan(args.split, subset, data_root=args.data_root) for subset in ("train", "test"))
    inputs = Vocabulary.build(command for command, _ in train + test)
    outputs = Vocabulary.build(output for _, output in train + test)
    torch.manual_seed(args.seed)
    model = MetaSeq2Seq(len(inputs), len(outputs), hidden=args.hidden, dropout=args.dropout, layers=args.layers)
    lake = args.protocol == "lake2019"
    episodes = PrimitiveRemapEpisodes(
        load_scan("all", "all", data_root=args.data_root) if lake else train,
        queries=args.queries,
        study=args.study if lake else None,
        rename_words=lake,
        seed=args.seed,
    )

    def learning_rate(step: int) -> float:
        return args.lr * 0.1 ** (step // args.lr_decay_every)

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(0))
    step, cpu_before = 0, 0.0
    checkpoint = run / "checkpoint.pt"
    if checkpoint.exists():
        state = load_tensors(checkpoint, "meta seq2seq checkpoint")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        episodes.random.setstate(state["episodes_random"])
        torch.set_rng_state(state["torch_random"])
        step, cpu_before = state["step"], state["cpu_seconds"]
        print(f"resuming at episode {step}", flush=True)

    def tensors(pairs):
        return pad([inputs.encode(c, eos=False) for c, _ in pairs]), pad([outputs.encode(o) for _, o in pairs])

    started = time.process_time()
    while step < args.episodes:
        model.train()
        if args.method == "seq2seq":  # a batch of training commands with SCAN's meanings, no study examples
            loss = model.loss(None, None, *tensors(episodes.random.sample(train, args.queries)))
        else:
            episode = episodes.sample()
            queries = episode.queries + episode.study if lake else episode.queries  # the support loss
            loss = model.loss(*tensors(episode.study), *tensors(queries))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        optimizer.step()
        step += 1
        if step % args.lr_decay_every == 0:  # as the authors' code: a fresh Adam at the lower rate
            optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(step))
        if step % args.checkpoint_every == 0 or step == args.episodes:
            run.mkdir(parents=True, exist_ok=True)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "episodes_random": episodes.random.getstate(),
                "torch_random": torch.get_rng_state(),
                "step": step,
                "cpu_seconds": cpu_before + time.process_time() - started,
            }
            save_tensors(state, checkpoint)
            print(f"episode {step}: loss {loss.item():.4f}, {state['cpu_seconds']:.0f} CPU s", flush=True)
    model.eval()
    study_in, study_out = (
        tensors([((word,), (action,)) for word, action in PRIMITIVES.items()])  # SCAN's meanings
        if args.method == "meta-seq2seq"
        else (None, None)
    )
    correct = []
    longest = max(len(o) for _, o in test) + 1
    for start in range(0, len(test), 256):
        batch = test[start : start + 256]
        decoded = model.greedy(study_in, study_out, tensors(batch)[0], max_length=longest)
        correct += [outputs.decode(row) == output for row, output in zip(decoded.tolist(), (o for _, o in batch))]
    accuracy = sum(correct) / len(correct)
    record = {
        "method": args.method,
        "protocol": None if args.method == "seq2seq" else args.protocol,
        "split": args.split,
        "test_commands": len(test),
        "accuracy": accuracy,
        "episodes": step,
        "queries_per_episode": args.queries,
        "study_per_episode": args.study if lake and args.method != "seq2seq" else None,
        "hidden": args.hidden,
        "layers": args.layers,
        "dropout": args.dropout,
        "lr": args.lr,
        "lr_decay_every": args.lr_decay_every,
        "seed": args.seed,
        "cpu_seconds": round(cpu_before + time.process_time() - started, 1),
        "correct": [int(c) for c in correct],
        **provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{name}.json", record)
    print(f"{args.split}: {100 * accuracy:.2f}% of {len(test)} test commands exactly right after {step} episodes")


if __name__ == "__main__":
    main()

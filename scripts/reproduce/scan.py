"""One SCAN run from a preset: train (resumably), score the split's whole test set, store the record.

    python scripts/reproduce/scan.py --preset metaseq2seq-scan-addjump --data-root ../shared/data [--seed 0]

Presets (learntolearn.compositional.scan_runs.PRESETS): ``metaseq2seq-scan-addjump`` follows the authors'
released code for "adding a new primitive by permutation" (Lake 2019): every SCAN command is a candidate,
its primitive words renamed by a random permutation and its primitives given a random permutation of
their actions (never SCAN's own), 20 study examples and 20 other queries per episode, the study examples
also queries (the paper's support loss), 2-layer LSTMs of 200 units, dropout 0.5, Adam at 1e-3 divided by
10 every 5,000 of 10,000 episodes. The network sees "jump" in every construction but never with all four
of SCAN's meanings; at test the primitives alone with SCAN's meanings are the study examples.
``metaseq2seq-scan-aroundright`` is the authors' around-right experiment with the same network and schedule:
"right" and "left" are written as two of right, left, 1, 2 and act as two of I_TURN_RIGHT, I_TURN_LEFT,
I_1, I_2 ("right" never I_TURN_RIGHT); at test "turn left" and "turn right" are the study examples.
``--protocol primitives-alone`` is stricter: study examples are the primitives alone and queries come from
the split's training set, where "jump" appears only alone. ``seq2seq-scan-addjump`` is the same network
without its memory trained on batches of training commands; ``transformer-scan-*`` a transformer trained
the same way. The checkpoint (settings, model, optimiser, random states) is written atomically into
runs/<name> every 250 steps; rerunning continues from it. Writes results/<name>.json with per-command
correctness, accuracy on held-out training-distribution episodes (meta seq2seq, MLC), and provenance;
scripts/reproduce/scan_table.py turns the records into the SCAN table.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from learntolearn.compositional.meta_seq2seq import NETWORK_VERSION
from learntolearn.compositional.scan_runs import PRESETS, preset, score_episodes, score_run, train_run
from learntolearn.engine.provenance import provenance
from learntolearn.files import write_json

ROOT = Path(__file__).resolve().parents[2]
#: held-out training-distribution episodes scored per method (MLC's episodes have one query, meta seq2seq's 20)
HELD_OUT_EPISODES = {"meta-seq2seq": 20, "mlc": 200}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="metaseq2seq-scan-addjump")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--protocol", choices=["lake2019", "primitives-alone"], default=None)
    parser.add_argument("--run", type=Path, default=None, help="Checkpoint folder (default: runs/<name>).")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    config = preset(args.preset, seed=args.seed, steps=args.steps, protocol=args.protocol)
    run = args.run or ROOT / "runs" / config.name
    train_run(config, run, args.data_root, log=lambda line: print(line, flush=True))
    scored = score_run(run, args.data_root)
    record = {
        "method": config.method,
        "protocol": config.protocol if config.method == "meta-seq2seq" else None,
        "preset": args.preset,
        "split": config.split,
        "seed": config.seed,
        **{k: scored[k] for k in ("test_commands", "accuracy", "steps", "cpu_seconds")},
        "config": asdict(config),
        "network_version": NETWORK_VERSION if config.method in ("meta-seq2seq", "seq2seq") else None,
        "correct": scored["correct"],
        # meta seq2seq and MLC: held-out episodes of their training distribution (did they learn them at all)
        "held_out_episodes": (
            score_episodes(run, args.data_root, episodes=HELD_OUT_EPISODES[config.method])
            if config.method in HELD_OUT_EPISODES
            else None
        ),
        **provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{config.name}.json", record)
    print(f"{config.split}: {100 * scored['accuracy']:.2f}% of {scored['test_commands']} test commands exactly right")


if __name__ == "__main__":
    main()

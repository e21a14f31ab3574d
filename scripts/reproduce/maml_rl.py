"""MAML-RL (Finn et al. 2017, Section 5.3): average return after 0-3 policy-gradient steps on fixed held-out
tasks, for trained runs (MAML, first-order MAML, the policy pretrained on all tasks) and the random
initialisation, all on the same tasks and sampling noise so that differences are paired per task.

    ltl rl train maml-rl-navigation --iterations N       (and pretrained-rl-navigation)
    python scripts/reproduce/maml_rl.py --run runs/maml-rl-navigation --run runs/pretrained-rl-navigation
    ltl rl train maml-rl-cheetah-dir                     (resumable: continue it with the same command)
    python scripts/reproduce/maml_rl.py --family cheetah-dir --run runs/maml-rl-cheetah-dir
    python scripts/update_docs.py --write

Writes results/maml-rl-FAMILY.json (every task's average return after each step, per row; each run's settings,
iterations, CPU time and training curve) and results/maml-rl-FAMILY.md, with provenance, and the first run's
training curve as docs/figures/maml-rl-FAMILY-curve.png. With ``--episodes N`` each adaptation step samples N
episodes per task for every row instead of the first run's count (the MAML authors' test script doubles it), into
results/maml-rl-FAMILY-N-episodes.{json,md}. With ``--step-budget N`` (navigation) each step samples as the MAML
authors' code does, episodes in lockstep until the completed ones hold N steps (their test script: 4,000), into
results/maml-rl-FAMILY-step-budget-N.{json,md}. With ``--goal X Y`` (navigation) every task has that goal, the
tasks differing only in the episodes they sample (the MAML authors' test script keeps one goal), into a name ending
in -goal-X_Y.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.provenance import provenance
from learntolearn.errors import LtlError
from learntolearn.experiments.plots import plot_rl_history
from learntolearn.files import load_tensors, write_json, write_text
from learntolearn.rl.maml_rl_runs import evaluate_maml_rl, evaluate_policy, initial_policy, preset
from learntolearn.rl.tasks import PointNavigation

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Family:
    tasks: int  # held-out tasks scored
    reward: str  # what one episode's return sums, for the table's caption
    ends_early: str | None = None  # what an episode ending before the horizon means, where one can


FAMILIES = {
    "navigation": Family(
        100, "minus the summed distance to the goal, over 100 steps; held-out goals", "reached the goal"
    ),
    "cheetah-dir": Family(
        40, "direction x forward velocity minus 0.05 |action|^2, over 200 steps; held-out directions (+1 or -1)"
    ),
    "cheetah-vel": Family(
        40, "minus |forward velocity - goal| minus 0.05 |action|^2, over 200 steps; held-out goal velocities"
    ),
}
ROWS = {
    "maml-rl": "MAML (ours)",
    "fomaml-rl": "first-order MAML (ours)",
    "pretrained-rl": "pretrained on all tasks (ours)",
}
RANDOM_ROW = "random initialisation"


def row_name(preset_name: str, family: str) -> str:
    return ROWS.get(preset_name.removesuffix(f"-{family}"), preset_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="navigation")
    parser.add_argument("--run", type=Path, action="append", default=[], help="A MAML-RL run folder; repeatable.")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--tasks", type=int, help="Held-out tasks (default: 100 goals for navigation, 40 otherwise).")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--episodes",
        type=int,
        help="Episodes per task for each adaptation step, every row (default: the first run's inner-step episodes).",
    )
    parser.add_argument(
        "--step-budget",
        type=int,
        help="Sample each adaptation step as the MAML authors' code does: episodes until they hold this many steps.",
    )
    parser.add_argument(
        "--goal",
        type=float,
        nargs=2,
        metavar=("X", "Y"),
        help="Navigation: every task has this goal and differs from the others only in the episodes it samples.",
    )
    args = parser.parse_args()
    goal = tuple(args.goal) if args.goal else None
    if goal is not None and args.family != "navigation":
        parser.error("--goal is a navigation task's parameter")
    if args.step_budget is not None and args.episodes is not None:
        parser.error("give --episodes or --step-budget, not both")
    if args.step_budget is not None and args.family != "navigation":
        parser.error("--step-budget is for navigation, whose episodes end at the goal; others run to the horizon")
    family = FAMILIES[args.family]
    tasks = args.tasks or family.tasks
    torch.set_num_threads(1)
    started = time.process_time()
    returns: dict[str, list[list[float]]] = {}
    ended_early: dict[str, list[list[float]]] = {}
    counts: dict[str, list[list[int]]] = {}  # episodes per step and task
    runs = []
    random_config = preset(f"maml-rl-{args.family}")
    episodes = args.episodes
    for run in args.run:
        state = load_tensors(run / "checkpoint.pt", "MAML-RL checkpoint")
        trained_preset = state.get("config", {}).get("name", "?")
        if not trained_preset.endswith(f"-{args.family}"):
            raise LtlError(f"{run} trained {trained_preset}, not a {args.family} run; pass the --family it trained")
        if args.step_budget is None:
            episodes = episodes or state["config"]["rollouts"]  # every row on the same episodes, so rows pair
        # the checkpoint read once
        scored = evaluate_maml_rl(
            run, tasks=tasks, steps=args.steps, state=state, episodes=episodes, step_budget=args.step_budget, goal=goal
        )
        returns[row_name(scored["preset"], args.family)] = scored["returns"]
        ended_early[row_name(scored["preset"], args.family)] = scored["ended_early"]
        counts[row_name(scored["preset"], args.family)] = scored["episodes"]
        runs.append(
            {
                "preset": scored["preset"],
                "config": state["config"],
                "iteration": scored["iteration"],
                "cpu_seconds": scored["cpu_seconds"],
                "history": state["history"],
                # the Gaussian policy's standard deviation per action dimension (in units of the largest action)
                "policy_std": state["policy"]["log_std"].exp().tolist(),
            }
        )
    if args.step_budget is None:
        episodes = episodes or random_config.rollouts
    inner_lrs = {run["config"]["inner_lr"] for run in runs}
    if len(inner_lrs) > 1:
        parser.error(f"the runs adapt with different step sizes ({sorted(inner_lrs)}); score them in separate tables")
    # the random initialisation adapts as the runs do
    random_config = replace(random_config, inner_lr=inner_lrs.pop()) if inner_lrs else random_config
    random_policy = initial_policy(random_config)
    scored = evaluate_policy(
        random_policy, random_config, tasks, args.steps, episodes=episodes, step_budget=args.step_budget, goal=goal
    )
    returns[RANDOM_ROW], ended_early[RANDOM_ROW] = scored["returns"], scored["ended_early"]
    counts[RANDOM_ROW] = scored["episodes"]
    cpu = round(time.process_time() - started, 1)
    record = {"tasks": tasks, "steps": args.steps, "episodes": episodes, "step_budget": args.step_budget, "goal": goal}
    record |= {"runs": runs, "returns": returns, "episodes_per_task": counts}
    record["ended_early"] = ended_early  # per row, step and task: the share of episodes ending before the horizon
    record.update(cpu_seconds=cpu, **provenance())
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"maml-rl-{args.family}" + (f"-{args.episodes}-episodes" if args.episodes else "")
    name += f"-step-budget-{args.step_budget}" if args.step_budget else ""
    name += f"-goal-{goal[0]:g}_{goal[1]:g}" if goal else ""
    write_json(args.out / f"{name}.json", record)
    if args.run and not args.episodes and not args.step_budget and not goal:
        args.figures.mkdir(parents=True, exist_ok=True)
        plot_rl_history(args.run[0], args.figures / f"{name}-curve.png")
    trained = ", ".join(
        f"{run['preset']} {run['iteration']} of {run['config']['iterations']} TRPO iterations "
        f"({run['cpu_seconds']:,.0f} CPU s)"
        for run in runs
    )
    command = "python scripts/reproduce/maml_rl.py" + (
        f" --family {args.family}" if args.family != "navigation" else ""
    )
    if args.episodes:
        command += f" --episodes {args.episodes}"
    if args.step_budget:
        command += f" --step-budget {args.step_budget}"
    if goal:
        command += f" --goal {goal[0]:g} {goal[1]:g}"
    sampled = (
        f"the episodes that a budget of {args.step_budget:,} steps collects"
        if args.step_budget
        else f"{episodes} episodes"
    )
    sampler = (
        f" Sampled as in the MAML authors' code: {args.step_budget // PointNavigation.horizon} episodes per task run "
        "in lockstep, each slot starting another when its episode ends, until the completed episodes hold the budget; "
        "episodes still running then are dropped and the average is over the completed ones, so episodes that end "
        "early at the goal weigh more than in a fixed number of episodes."
        if args.step_budget
        else ""
    )
    lines = [
        f"Generated by `{command}` at commit `{record['commit'][:10]}` ({cpu:,} CPU s to evaluate, 2-core x86_64). "
        f"Average return per episode ({family.reward}) on the same {tasks} tasks "
        + (f"(all with the goal ({goal[0]:g}, {goal[1]:g}); seed 0 for their episodes)" if goal else "(seed 0)")
        + " after each "
        f"policy-gradient step on {sampled} (the first of size {random_config.inner_lr:g}, "
        f"later ones {random_config.inner_lr / 2:g}, as the MAML authors' evaluation halves it), mean with a normal "
        f"95% interval over tasks. Trained: {trained or 'none'}; the random row is the untrained initialisation "
        f"(seed 0) adapted the same way.{sampler}",
        "",
        "| policy | " + " | ".join(f"{s} steps" for s in range(args.steps + 1)) + " |",
        "|---|" + "---|" * (args.steps + 1),
    ]
    for row, values in returns.items():
        lines.append(
            f"| {row} | "
            + " | ".join(f"{step.mean():.2f} ± {confidence_interval(step):.2f}" for step in torch.tensor(values))
            + " |"
        )
    reference = ROWS["maml-rl"]
    if reference in returns:
        lines += ["", f"Paired differences per task, {reference} minus each other row (mean ± 95% interval):", ""]
        lines += [
            "| against | " + " | ".join(f"{s} steps" for s in range(args.steps + 1)) + " |",
            "|---|" + "---|" * (args.steps + 1),
        ]
        ours = np.array(returns[reference])
        for row, values in returns.items():
            if row == reference:
                continue
            differences = torch.from_numpy(ours - np.array(values))
            lines.append(
                f"| {row} | "
                + " | ".join(f"{d.mean():+.2f} ± {confidence_interval(d):.2f}" for d in differences)
                + " |"
            )
    if family.ends_early:
        lines += [
            "",
            f"Episodes that {family.ends_early} (% of each task's episodes, mean over tasks):",
            "",
        ]
        lines += [
            "| policy | " + " | ".join(f"{s} steps" for s in range(args.steps + 1)) + " |",
            "|---|" + "---|" * (args.steps + 1),
        ]
        for row, shares in ended_early.items():
            lines.append(f"| {row} | " + " | ".join(f"{100 * np.mean(step):.0f}" for step in shares) + " |")
    if args.step_budget:
        lines += ["", "Episodes per task in each step's sample (mean over tasks):", ""]
        lines += [
            "| policy | " + " | ".join(f"{s} steps" for s in range(args.steps + 1)) + " |",
            "|---|" + "---|" * (args.steps + 1),
        ]
        for row, numbers in counts.items():
            lines.append(f"| {row} | " + " | ".join(f"{np.mean(step):.1f}" for step in numbers) + " |")
    write_text(args.out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

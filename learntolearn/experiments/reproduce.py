"""``ltl reproduce TABLE``: paper tables from runs, with our figure, the paper's, the gap and the provenance.

A table is a list of rows; each row names the preset that trains its run (the run folder is
``RUNS/<preset>``) and the fixed episodes it is scored on. Every row is evaluated on the versioned
fixed test episodes (seed ``TEST_EPISODE_SEED``), so rows with the same setting are paired and the
table reports each one's difference from the first row of its setting with a 95% CI. Finished runs
are read; unfinished ones are scored at their best checkpoint so far and marked partial, unless a
process is training them at that moment (their checkpoints would change while they are scored: the
earlier row is kept, or the row is listed as not run); missing ones are trained with
``--train-missing``, kept from the table written earlier (a machine may not hold every run folder: its
row, provenance and per-episode scores carry over, marked as kept) or listed as not run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet, load_dataset
from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.data.sampler import EPISODE_SET_VERSION
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import Evaluation, evaluate, paired_difference
from learntolearn.engine.model_file import load_run
from learntolearn.engine.provenance import provenance
from learntolearn.engine.trainer import Trainer
from learntolearn.experiments.tables import TABLES, Row
from learntolearn.files import folder_in_use, load_tensors, write_json, write_text


def _cached_evaluation(run: Path, row: Row, model, episodes: int, data_root: str | None) -> Evaluation:
    """Per-episode accuracies of the run's checkpoint on the row's episodes, cached beside the run under the
    checkpoint's content digest and the algorithm's evaluation version (so a copied folder keeps its cache;
    entries keyed by its modification time, as earlier versions wrote them, are still read)."""
    setting = f"{row.setting()}:{episodes}:seed{TEST_EPISODE_SEED}:episode-set-v{EPISODE_SET_VERSION}"
    if model.algorithm.evaluation_version > 1:
        setting += f":evaluation-v{model.algorithm.evaluation_version}"
    digest = hashlib.blake2b(model.source.read_bytes(), digest_size=16).hexdigest()
    key = f"{model.source.name}:blake2b-{digest}:{setting}"
    stat = model.source.stat()
    earlier_key = f"{model.source.name}:{stat.st_mtime_ns}:{stat.st_size}:{setting}"
    cache_path = run / "table_evaluations.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if key not in cache and earlier_key in cache:
        cache[key] = cache.pop(earlier_key)
        write_json(cache_path, cache)
    if key in cache:
        return Evaluation(torch.tensor(cache[key], dtype=torch.float64))
    c = model.config.episodes
    options = {"data_root": data_root, "image_size": c.image_size, "download": False}
    if row.lake_runs:
        tasks = load_lake_runs(**options)
    else:
        data = load_dataset(c.dataset, c.split, c.test_subset, **options)
        tasks = EpisodeSet.generate(
            data, row.ways or c.ways, row.shots or c.shots, c.queries, episodes, TEST_EPISODE_SEED
        ).tasks(data)
    result = evaluate(model.algorithm, tasks, progress=False)
    cache[key] = result.accuracies.tolist()
    write_json(cache_path, cache)
    return result


def model_config(run: Path) -> TrainConfig:
    return TrainConfig.from_dict(json.loads((run / "config.json").read_text()))


def _training(run: Path) -> dict:
    config = model_config(run).run
    trained = json.loads((run / "provenance.json").read_text())
    if (run / "results.json").exists():
        steps, seconds = (json.loads((run / "results.json").read_text())[k] for k in ("steps", "train_seconds"))
    else:
        state = load_tensors(run / "last.pt")
        steps, seconds = state["step"], state["train_seconds"]
    words = trained.get("command", "").split()
    # the entry point as a script (python learntolearn/cli/main.py, as from a checkout) is the ltl command
    is_ltl = words and (os.path.basename(words[0]) == "ltl" or words[0].endswith("learntolearn/cli/main.py"))
    command = " ".join(["ltl", *words[1:]] if is_ltl else words)
    command = command or f"(not recorded: {run.name} predates command logging; see the README)"
    return {
        "status": "complete" if steps >= config.steps else "partial",
        "steps": steps,
        "of_steps": config.steps,
        "train_hours": round(seconds / 3600, 3),
        "threads": trained["threads"],
        "cpu_hours": round(seconds * trained["threads"] / 3600, 3),
        "command": command,
        "commit": trained["commit"],
        "seed": config.seed,
        "hardware": f"{trained['cores']}-core {trained['cpu']}",
        "torch": trained["torch"],
    }


def read_table(table: str, out_dir: str | Path) -> dict[tuple[str, str], dict]:
    """Rows of the table written earlier to ``out_dir`` by (preset, setting), with their per-episode scores."""
    out_dir = Path(out_dir)
    js, scores = out_dir / f"{table}.json", out_dir / f"{table}.episodes.json"
    if not js.exists():
        return {}
    written = json.loads(js.read_text())
    accuracies = json.loads(scores.read_text()) if scores.exists() else {}
    rows = {}
    for r in written["rows"]:
        if r["status"] == "not run":
            continue
        key = f"{r['preset']} | {r['setting']}"
        rows[(r["preset"], r["setting"])] = {
            "kept_from": written["generated_at_commit"],
            **r,
            **({"episode_accuracies": accuracies[key]} if key in accuracies else {}),
        }
    return rows


def reproduce(
    table: str,
    runs_dir: str | Path,
    *,
    train_missing: bool = False,
    episodes: int = 1000,
    data_root: str | None = None,
    progress: bool = True,
    earlier: dict[tuple[str, str], dict] | None = None,
) -> list[dict]:
    """Evaluate (and, if asked, train) every row of ``table``; one result dict per row.

    A row whose run folder is missing is taken from ``earlier`` (see :func:`read_table`) when it holds one.
    """
    runs_dir, earlier = Path(runs_dir), earlier or {}
    results, references = [], {}
    for row in TABLES.get(table):
        run = runs_dir / row.preset
        record: dict[str, Any] = {
            "preset": row.preset,
            "setting": row.setting(),
            "note": row.note,
            "paper": row.paper,
            "paper_ci": row.paper_ci,
            "source": row.source,
            "metric": "error %" if row.paper_is_error else "accuracy %",
        }
        if not (run / "config.json").exists() and train_missing:
            Trainer(row.config(), run, data_root=data_root, download=True, progress=progress).run()
        training_now = folder_in_use(run) if (run / "config.json").exists() else None
        if training_now is not None:  # its checkpoints change under us: keep the earlier row, or list it as not run
            record["training_now"] = f"process {training_now} is training it"
        here = (run / "config.json").exists() and training_now is None
        kept = None if here else earlier.get((row.preset, row.setting()))
        if kept is not None:
            record = {**{k: v for k, v in kept.items() if k != "training_now"}, **record, "kept": True}
            scores = kept.get("episode_accuracies")
            result = None if scores is None else Evaluation(torch.tensor(scores, dtype=torch.float64))
        elif here:
            model = load_run(run, data_root)
            result = _cached_evaluation(run, row, model, episodes, data_root)
            ours = 100 * (1 - result.mean) if row.paper_is_error else 100 * result.mean
            record.update(
                ours=round(ours, 2),
                ci95=round(100 * result.ci95, 2),
                episodes=len(result.accuracies),
                checkpoint=model.source.name,
                episode_set={"seed": TEST_EPISODE_SEED, "version": EPISODE_SET_VERSION},
                **_training(run),
            )
            record["gap"] = round(ours - row.paper, 2) if row.paper is not None else None
            record["episode_accuracies"] = [round(float(a), 4) for a in result.accuracies]
            # pairs use the stored scores, so a row kept from an earlier table pairs exactly as a live one
            result = Evaluation(torch.tensor(record["episode_accuracies"], dtype=torch.float64))
        else:
            results.append({**record, "status": "not run"})
            continue
        reference = row.versus or row.setting()
        if reference not in references:
            references[reference] = (row.preset, result)
            record.pop("paired", None)
        else:
            name, other = references[reference]
            if result is not None and other is not None:
                diff, ci = paired_difference(result, other)
                record["paired"] = {"versus": name, "difference": round(100 * diff, 2), "ci95": round(100 * ci, 2)}
            elif kept is None or "paired" not in record:
                record["paired"] = {"versus": name, "unavailable": "its per-episode scores were not kept"}
        results.append(record)
    return results


def to_markdown(table: str, results: list[dict]) -> str:
    """The table as Markdown, followed by the command of each run."""
    lines = [
        f"Generated by `ltl reproduce {table}` at commit `{provenance()['commit'][:10]}` on "
        f"{os.cpu_count()}-core {platform.machine()}; each row's own run is described in its columns.",
        "",
        "| preset | setting | ours (95% CI) | paper | gap | paired difference (95% CI) | training | seed | trained at |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        paper = "—" if r["paper"] is None else f"{r['paper']}" + (f" ± {r['paper_ci']}" if r["paper_ci"] else "")
        if r["status"] == "not run":
            busy = f" ({r['training_now']}: scored once it ends)" if r.get("training_now") else ""
            lines.append(f"| {r['preset']} | {r['setting']} | not run{busy} | {paper} | | | | | |")
            continue
        metric = "error " if r["metric"].startswith("error") else ""
        paired = r.get("paired", {})
        if "unavailable" in paired:
            paired = f"n/a: the reference {paired['versus']} was kept without per-episode scores"
        else:
            paired = (
                f"{paired['difference']:+.2f} ± {paired['ci95']:.2f} vs {paired['versus']}" if paired else "reference"
            )
            if r.get("paired") and "episode_accuracies" not in r:
                paired += " (carried over, not recomputable)"
        episodes = f"{r['episodes']} episodes"
        if "episode_set" in r:
            episodes += f", test seed {r['episode_set']['seed']}, sampler v{r['episode_set']['version']}"
        else:
            episodes += ", episode set not recorded"
        if "episode_accuracies" not in r:
            episodes += "; **no stored per-episode scores**"
        gap = "" if r["gap"] is None else f"{r['gap']:+.2f}"
        status = "" if r["status"] == "complete" else "partial: "
        training = (
            f"{status}{r['steps']:,} of {r['of_steps']:,} steps, {r['train_hours']:.2f} h on "
            f"{r['threads']} thread(s), {r['checkpoint']}"
        )
        if r.get("kept"):
            why = f"{r['training_now']}" if r.get("training_now") else "run folder not on this machine"
            training += f"; kept from the table at `{r['kept_from'][:10]}` ({why})"
        setting = r["setting"] + (f" ({r['note']})" if r.get("note") else "")
        lines.append(
            f"| {r['preset']} | {setting} | {metric}{r['ours']:.2f} ± {r['ci95']:.2f} "
            f"({episodes}) | {paper} | {gap} | {paired} | {training} | {r['seed']} | "
            f"`{r['commit'][:10]}`{' with uncommitted changes' if r['commit'].endswith('-dirty') else ''} |"
        )
    lines += [
        "",
        "Paper figures: " + "; ".join(sorted({f"{r['preset']}: {r['source']}" for r in results})) + ".",
        "",
        "Commands that trained the runs (as recorded in each run's provenance.json):",
        "",
        "```bash",
    ]
    lines += [*sorted({r["command"] for r in results if "command" in r}), "```"]
    return "\n".join(lines) + "\n"


def write_table(table: str, results: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{table}.md", out_dir / f"{table}.json"
    write_text(md, to_markdown(table, results))
    scores = {f"{r['preset']} | {r['setting']}": r["episode_accuracies"] for r in results if "episode_accuracies" in r}
    rows = [{k: v for k, v in r.items() if k != "episode_accuracies"} for r in results]
    write_text(js, json.dumps({"table": table, "generated_at_commit": provenance()["commit"], "rows": rows}, indent=2))
    write_text(out_dir / f"{table}.episodes.json", json.dumps(scores, separators=(",", ":")))
    return md, js

"""`ltl adapt` as a user would run it, on real image files: characters of one Omniglot evaluation alphabet.

Writes WORK/support/<character>/ (the first drawing of each of the first WAYS characters) and
WORK/query/ (the next QUERIES drawings of each) as the official 105x105 PNGs, runs
FewShotClassifier on them with MODEL (a run folder or an `ltl export` file) and prints accuracy
and time.

    python scripts/reproduce/adapt_omniglot_folder.py MODEL --data-root ../shared/data --work /tmp/omniglot-user
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

from learntolearn import FewShotClassifier
from learntolearn.data.roots import resolve_data_root


def write_folders(archive: Path, alphabet: str, ways: int, queries: int, work: Path) -> dict[str, str]:
    truth = {}
    with zipfile.ZipFile(archive) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png") and n.split("/")[1] == alphabet)
        characters = sorted({n.split("/")[2] for n in names})[:ways]
        for character in characters:
            files = [n for n in names if n.split("/")[2] == character]
            (work / "support" / character).mkdir(parents=True, exist_ok=True)
            (work / "support" / character / Path(files[0]).name).write_bytes(z.read(files[0]))
            (work / "query").mkdir(exist_ok=True)
            for name in files[1 : 1 + queries]:
                (work / "query" / Path(name).name).write_bytes(z.read(name))
                truth[Path(name).name] = character
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--data-root")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--alphabet", default="Tibetan")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--queries", type=int, default=5)
    args = parser.parse_args()
    if args.work.exists():
        raise SystemExit(f"{args.work} exists; give a new --work folder")
    archive = resolve_data_root(args.data_root) / "omniglot" / "images_evaluation.zip"
    truth = write_folders(archive, args.alphabet, args.ways, args.queries, args.work)
    started = time.perf_counter()
    classifier = FewShotClassifier.load(args.model, args.data_root)
    loaded = time.perf_counter()
    predictions = classifier.fit(args.work / "support").predict(args.work / "query")
    done = time.perf_counter()
    correct = sum(p.predicted_class == truth[Path(p.file).name] for p in predictions)
    print(
        f"{args.alphabet}, {args.ways} characters, 1 support drawing each: {correct}/{len(predictions)} queries "
        f"right; load {loaded - started:.2f} s, fit+predict {done - loaded:.2f} s"
    )


if __name__ == "__main__":
    main()

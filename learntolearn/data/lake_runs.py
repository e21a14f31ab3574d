"""The 20 within-alphabet 20-way one-shot runs of Lake et al. (Science 2015), ``all_runs.zip``.

Each run holds one training image of each of 20 characters from one evaluation alphabet
(``runXX/training/classYY.png``) and 20 test images to classify (``runXX/test/itemYY.png``), matched
by ``runXX/class_labels.txt``. Each run becomes one :class:`Task`: 20-way 1-shot with 20 queries,
class ``i`` being ``classYY`` with ``YY = i + 1``.
"""

from __future__ import annotations

import os
import zipfile

import torch

from learntolearn.data.omniglot import LAKE_RUNS, decode, fetch
from learntolearn.errors import DataError
from learntolearn.types import Task

RUNS, WAYS = 20, 20


def load_lake_runs(
    *, data_root: str | os.PathLike[str] | None = None, image_size: int = 28, download: bool = False
) -> list[Task]:
    """The 20 runs as tasks, images preprocessed exactly like :func:`load_omniglot`."""
    path = fetch(LAKE_RUNS, data_root, download)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path} is not a readable zip archive ({err}); delete it and download it again") from err
    tasks = []
    with archive:
        names = set(archive.namelist())
        for run in range(1, RUNS + 1):
            prefix = f"run{run:02d}"
            labels_file = f"{prefix}/class_labels.txt"
            if labels_file not in names:
                raise DataError(f"{path} has no {labels_file}; it is not the official all_runs.zip ({LAKE_RUNS.url})")
            pairs = [line.split() for line in archive.read(labels_file).decode().splitlines() if line.strip()]
            if len(pairs) != WAYS:
                raise DataError(f"{path}:{labels_file} lists {len(pairs)} test items, expected {WAYS}")
            support = [
                decode(archive.read(f"{prefix}/training/class{c:02d}.png"), image_size) for c in range(1, WAYS + 1)
            ]
            query = [decode(archive.read(test), image_size) for test, _ in pairs]
            query_y = [int(train.rsplit("class", 1)[1].removesuffix(".png")) - 1 for _, train in pairs]
            tasks.append(
                Task(
                    support_x=torch.stack(support).float().div_(255),
                    support_y=torch.arange(WAYS),
                    query_x=torch.stack(query).float().div_(255),
                    query_y=torch.tensor(query_y),
                    class_ids=torch.arange(WAYS) + (run - 1) * WAYS,
                )
            )
    return tasks

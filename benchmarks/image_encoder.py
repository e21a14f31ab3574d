"""Feature extraction throughput of our EfficientNet-Lite0 against the reference implementation, same weights.

    python benchmarks/image_encoder.py [--batch 32 --rounds 5 --threads 1]

Images per second of the pooled features of 224x224 RGB batches, interleaved rounds, median per
implementation: ours in float32 (channels-last) and under bfloat16 autocast, and efficientnet-lite-pytorch
(its ``extract_features`` and pooling, contiguous layout, static same-padding) in float32. The largest
absolute difference of the float32 features is recorded beside the rates. Appends a JSON line to
benchmarks/results/image_encoder.jsonl.
"""

from __future__ import annotations

import argparse

import torch
from record import append, interleaved_medians

from learntolearn.nn.efficientnet import ImageEncoder, weights_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    batches = [
        torch.randint(0, 256, (args.batch, 3, 224, 224), dtype=torch.uint8, generator=g) for _ in range(args.batches)
    ]

    def ours(bfloat16: bool):
        encoder = ImageEncoder(batch_size=args.batch, bfloat16=bfloat16)
        return encoder.encode

    def reference():
        from efficientnet_lite_pytorch import EfficientNet

        network = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=str(weights_path("efficientnet-lite0"))
        )
        network.eval()

        def encode(images: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                x = (images.float() / 255 - 127 / 255) / (128 / 255)
                return network.extract_features(x).mean((2, 3))

        return encode

    implementations = {
        "learntolearn float32": lambda: ours(False),
        "learntolearn bfloat16": lambda: ours(True),
        "efficientnet-lite-pytorch float32": reference,
    }
    medians, missing = interleaved_medians(implementations, batches, args.rounds)
    check = batches[0][:4]
    difference = float((ours(False)(check) - reference()(check)).abs().max())
    bf16_difference = float((ours(True)(check) - ours(False)(check)).abs().max())
    append(
        "image_encoder",
        {
            "setting": f"EfficientNet-Lite0 features, 224x224, batches of {args.batch}",
            "images_per_s": {name: round(rate * args.batch, 2) for name, rate in medians.items()},
            "speedup_vs_reference": round(
                medians["learntolearn float32"] / medians["efficientnet-lite-pytorch float32"], 3
            )
            if "efficientnet-lite-pytorch float32" in medians
            else None,
            "max_abs_difference_float32": difference,
            "max_abs_difference_bfloat16_vs_float32": bf16_difference,
            "missing": missing,
            "rounds": args.rounds,
        },
    )


if __name__ == "__main__":
    main()

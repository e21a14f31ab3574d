"""A bounded load test of `ltl serve` on localhost: simulated users drawing and labelling photos at once.

    python benchmarks/serve_load.py --model runs/protonet-omniglot-short [--users 50 --seconds 60]

Starts `ltl serve MODEL` in its own process on a free port, then runs ``--users`` concurrent simulated
users (one cookie jar, hence one session, each) for ``--seconds``: each adds example photos of two
classes once, then repeats: a Draw prediction (5 classes of one drawn example each and a query,
the PNGs a page sends) and, every fifth time, labels one photo against its own examples. Latency of
each request from send to full response; p50 / p95 / max per kind, requests per second and errors
(none expected). Appends a JSON line to benchmarks/results/serve_load.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import socket
import statistics
import subprocess
import sys
import time

import httpx
from PIL import Image, ImageDraw
from record import append

SHAPES = [
    [(20, 70), (120, 70)],
    [(70, 20), (70, 120)],
    [(20, 120), (120, 20)],
    [(20, 20), (120, 120)],
    [(30, 30), (110, 30), (110, 110), (30, 110), (30, 30)],
]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def glyph(points: list[tuple[int, int]], shift: int = 0) -> str:
    image = Image.new("RGB", (140, 140), "white")
    ImageDraw.Draw(image).line([(x + shift, y + shift) for x, y in points], fill="black", width=7)
    return "data:image/png;base64," + base64.b64encode(png(image)).decode()


def photo(colour: tuple[int, int, int]) -> bytes:
    return png(Image.new("RGB", (320, 240), colour))


async def user(base: str, until: float, latencies: dict[str, list[float]], errors: list[str], index: int) -> None:
    draw = {
        "classes": [{"name": f"c{i}", "examples": [glyph(points)]} for i, points in enumerate(SHAPES)],
        "query": glyph(SHAPES[index % len(SHAPES)], shift=4),
    }
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def timed(kind: str, request) -> None:
            began = time.perf_counter()
            response = await request
            latencies.setdefault(kind, []).append(time.perf_counter() - began)
            if response.status_code != 200:
                errors.append(f"{kind}: {response.status_code} {response.text[:200]}")

        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            files = [("files", (f"{name}{i}.png", photo(colour), "image/png")) for i in range(2)]
            await timed("add example photos", client.post("/api/photos/examples", data={"class": name}, files=files))
        step = 0
        while time.perf_counter() < until:
            await timed("draw prediction", client.post("/api/draw/predict", json=draw))
            if step % 5 == 0:
                files = [("files", ("query.png", photo((200, 40, 40)), "image/png"))]
                await timed("label a photo", client.post("/api/photos/label", files=files))
            step += 1


async def load(base: str, users: int, seconds: float) -> tuple[dict[str, list[float]], list[str], float]:
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    began = time.perf_counter()
    await asyncio.gather(*(user(base, began + seconds, latencies, errors, i) for i in range(users)))
    return latencies, errors, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="A model file or run folder trained on glyphs.")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--server-threads", type=int, default=1, help="Torch threads of the server process.")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    command = ["serve", args.model, "--port", str(port), "--threads", str(args.server_threads)]
    server = subprocess.Popen([sys.executable, "-m", "learntolearn.cli.main", *command])
    try:
        while True:
            try:
                httpx.get(f"{base}/api/status", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.perf_counter() - started > 60:
                    raise SystemExit("ltl serve did not start") from None
                time.sleep(0.1)
        startup = time.perf_counter() - started
        latencies, errors, elapsed = asyncio.run(load(base, args.users, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=30)
    kinds = {}
    for kind, values in latencies.items():
        ordered = sorted(values)
        kinds[kind] = {
            "requests": len(values),
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max_ms": round(1000 * ordered[-1], 1),
        }
    append(
        "serve_load",
        {
            "setting": f"{args.users} users, {args.seconds:g} s",
            "model": args.model,
            "server_threads": args.server_threads,
            "startup_s": round(startup, 2),
            "elapsed_s": round(elapsed, 1),
            "requests_per_s": round(sum(len(v) for v in latencies.values()) / elapsed, 1),
            "kinds": kinds,
            "errors": len(errors),
            "first_errors": errors[:3],
        },
    )


if __name__ == "__main__":
    main()

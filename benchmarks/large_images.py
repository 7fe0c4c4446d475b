"""Targets of the large-images issue, measured in one run; prints met/missed and exits 1 if any is missed.

1. Synthetic scans compress like a real CT slice: their 16-bit PNG ratio (Pillow's default level) within
   +-15% of ``693_UNCR.dcm``'s (pydicom-data), both measured here, side by side.
2. 1,000 synthetic 512x512 scans generated in at most 5 s (an absolute target, so it is printed with the
   time numpy takes to draw as many random 16-bit numbers, measured alongside, to show the machine's speed).
3. ``load_folder`` on 2,000 JPEGs of 256x256: two processes at least 1.7x as fast as one.
4. ``load_folder``'s peak memory growth at most 1.5x the array it returns (measured in a fresh process:
   its peak resident memory, VmHWM, less its resident memory before the load).

Every timing runs once untimed first, then the median of ``--repeats`` runs. About a minute on two cores.
Run: .venv/bin/python benchmarks/large_images.py [--repeats 3] [--images 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from helpers import datasets, scans

PNG_TOLERANCE = 0.15
GENERATION_SECONDS = 5.0
SCANS_GENERATED = 1000
SCANS_COMPARED = 30
PARALLEL_SPEEDUP = 1.7
MEMORY_FACTOR = 1.5
JPEG_SIDE = 256

# The peak is this process's own high-water mark, VmHWM: getrusage's ru_maxrss would start from the
# benchmark's own size, as Linux carries it over from the parent that started the probe.
MEMORY_PROBE = """
import sys
from helpers import datasets

def kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) * 1024

datasets.load_folder(sys.argv[1], limit=8, progress=False)  # imports: not the array's cost
before = kib("VmRSS")
data = datasets.load_folder(sys.argv[1], progress=False)
data.images.max()  # every page mapped: the array counts fully, wherever the workers wrote it
print(kib("VmHWM") - before, data.images.nbytes)
"""


def median_seconds(function, repeats: int) -> float:
    function()  # untimed
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def cpu_seconds(function) -> float:
    """CPU time (user + system) that ``function()`` costs this process and its worker processes."""
    me = psutil.Process()

    def used() -> dict[int, float]:
        times = {process.pid: process.cpu_times() for process in me.children(recursive=True)}
        times[me.pid] = me.cpu_times()
        return {pid: t.user + t.system for pid, t in times.items()}

    before = used()
    function()
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in used().items())


def report(results: list[bool], met: bool, text: str) -> None:
    results.append(met)
    print(f"[{'met' if met else 'MISSED'}] {text}", flush=True)


def write_jpegs(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 200, JPEG_SIDE, dtype=np.float32)
    for index in range(count):
        image = base[None, :, None] + base[:, None, None] * 0.2 + rng.normal(0, 12, (JPEG_SIDE, JPEG_SIDE, 3))
        label = folder / f"class{index % 4}"
        label.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(label / f"{index:05d}.jpg", quality=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=2000, help="JPEGs for the load_folder targets")
    arguments = parser.parse_args()
    results: list[bool] = []

    real = scans.compression_ratios(scans.real_slices((scans.REFERENCE_SLICE,))).iloc[0]
    synthetic = datasets.synthetic_scans(SCANS_COMPARED)
    ratios = scans.compression_ratios({str(i): synthetic.images[i] for i in range(SCANS_COMPARED)})
    png = ratios["raw_bytes"].sum() / ratios["png_bytes"].sum()
    j2k = ratios["raw_bytes"].sum() / ratios["jpeg2000_bytes"].sum()
    print(f"16-bit PNG, Pillow's default level: real {scans.REFERENCE_SLICE} {real['png_ratio']:.2f}x, "
          f"{SCANS_COMPARED} synthetic scans {png:.2f}x (each {ratios['png_ratio'].min():.2f}-"
          f"{ratios['png_ratio'].max():.2f}x)")
    print(f"lossless JPEG 2000 (not a target):   real {real['jpeg2000_ratio']:.2f}x, synthetic {j2k:.2f}x")
    report(results, abs(png / real["png_ratio"] - 1) <= PNG_TOLERANCE,
           f"synthetic PNG ratio {png / real['png_ratio'] - 1:+.1%} from the real slice's (target within "
           f"+-{PNG_TOLERANCE:.0%})")

    generate = median_seconds(lambda: datasets.synthetic_scans(SCANS_GENERATED), arguments.repeats)
    shape = (SCANS_GENERATED, 512, 512)
    reference = median_seconds(
        lambda: np.random.default_rng().integers(0, 4096, shape, dtype=np.uint16), arguments.repeats)
    report(results, generate <= GENERATION_SECONDS,
           f"{SCANS_GENERATED:,} scans generated in {generate:.2f} s (target <= {GENERATION_SECONDS:.0f} s); "
           f"numpy draws as many random 12-bit numbers in {reference:.2f} s ({generate / reference:.1f}x that)")

    with tempfile.TemporaryDirectory(prefix="large-images-bench-") as folder:
        print(f"writing {arguments.images:,} JPEGs of {JPEG_SIDE}x{JPEG_SIDE} ...", flush=True)
        write_jpegs(Path(folder), arguments.images)
        one = median_seconds(lambda: datasets.load_folder(folder, workers=1, progress=False), arguments.repeats)
        two = median_seconds(lambda: datasets.load_folder(folder, workers=2, progress=False), arguments.repeats)
        cpu_one, cpu_two = (cpu_seconds(lambda w=workers: datasets.load_folder(folder, workers=w, progress=False))
                            for workers in (1, 2))
        report(results, one / two >= PARALLEL_SPEEDUP,
               f"load_folder of {arguments.images:,} JPEGs: one process {one:.2f} s, two {two:.2f} s, "
               f"{one / two:.2f}x (target >= {PARALLEL_SPEEDUP}x); CPU seconds of one load, workers included: "
               f"{cpu_one:.2f} in one process, {cpu_two:.2f} in two (load average now {os.getloadavg()[0]:.1f} "
               f"on {os.cpu_count()} cores)")
        probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, folder], capture_output=True, text=True,
                               check=True)
        growth, array = (int(value) for value in probe.stdout.split())
        report(results, growth <= MEMORY_FACTOR * array,
               f"load_folder peak memory growth {growth / 2**20:,.0f} MiB for a {array / 2**20:,.0f} MiB array, "
               f"{growth / array:.2f}x (target <= {MEMORY_FACTOR}x)")

    missed = results.count(False)
    print(f"{len(results) - missed} of {len(results)} targets met" + (f", {missed} missed" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

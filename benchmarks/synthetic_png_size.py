"""How closely the synthetic stand-in matches CIFAR-10 as PNG, and how fast it is made.

Prints the mean and median PNG size (Pillow's defaults, as the disk store writes them) of 10,000
synthetic images against CIFAR-10's 2,270-byte average, and the time to generate 100,000 images.
Run: .venv/bin/python benchmarks/synthetic_png_size.py [--images 10000] [--generate 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from helpers.datasets import synthetic
from helpers.stores.image_files import encode_png

CIFAR10_MEAN_PNG_BYTES = 2_270


def png_sizes(images: np.ndarray) -> np.ndarray:
    return np.array([len(encode_png(image)) for image in images], dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="images whose PNG size is measured")
    parser.add_argument("--generate", type=int, default=100_000, help="images generated for the timing")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    sizes = png_sizes(synthetic(arguments.images, seed=arguments.seed).images)
    mean, median = sizes.mean(), np.median(sizes)
    print(f"PNG size of {arguments.images:,} synthetic images (Pillow defaults):")
    ratio = mean / CIFAR10_MEAN_PNG_BYTES
    print(f"  mean   {mean:8.0f} bytes  ({ratio:.3f} x CIFAR-10's {CIFAR10_MEAN_PNG_BYTES:,})")
    print(f"  median {median:8.0f} bytes")
    print(f"  10th-90th percentile {np.percentile(sizes, 10):.0f}-{np.percentile(sizes, 90):.0f} bytes")

    started = time.perf_counter()
    generated = synthetic(arguments.generate, seed=arguments.seed)
    seconds = time.perf_counter() - started
    print(
        f"generated {len(generated):,} images in {seconds:.2f} s "
        f"({len(generated) / seconds:,.0f} images/s, {generated.images.nbytes / 2**20:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()

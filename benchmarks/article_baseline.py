"""The article's own implementation, rewritten here as the baseline our stores are measured against.

Behaviour kept as the article has it, because that is what its numbers measured: every LMDB value is a
pickled ``CIFAR_Image`` object and the map size is ten times the raw bytes; PNGs are written and read one
by one in a Python loop with labels in a CSV; HDF5 stores big-endian uint8 datasets and reads them with
``np.array(file["/images"])`` after opening the file "r+". Only for benchmarks: unpickling runs code, so
nothing in ``helpers`` does this.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import h5py
import lmdb
import numpy as np
from PIL import Image


class CIFAR_Image:  # noqa: N801 - the article's class name, kept so its pickles look the same
    def __init__(self, image: np.ndarray, label: int) -> None:
        self.channels = image.shape[2]
        self.size = image.shape[:2]
        self.image = image.tobytes()
        self.label = label

    def get_image(self) -> np.ndarray:
        return np.frombuffer(self.image, dtype=np.uint8).reshape(*self.size, self.channels)


class ArticleDisk:
    name = "disk"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def store_many(self, images: np.ndarray, labels: np.ndarray) -> None:
        for index, image in enumerate(images):
            Image.fromarray(image).save(self.root / f"{index}.png")
        with open(self.root / f"{len(images)}.csv", "w") as handle:
            writer = csv.writer(handle, delimiter=" ", quotechar="|", quoting=csv.QUOTE_MINIMAL)
            for label in labels:
                writer.writerow([label])

    def read_many(self, num_images: int) -> tuple[list, list]:
        images = [np.array(Image.open(self.root / f"{index}.png")) for index in range(num_images)]
        with open(self.root / f"{num_images}.csv") as handle:
            reader = csv.reader(handle, delimiter=" ", quotechar="|", quoting=csv.QUOTE_MINIMAL)
            labels = [int(row[0]) for row in reader]
        return images, labels


class ArticleLmdb:
    name = "lmdb"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, num_images: int) -> str:
        return str(self.root / f"{num_images}_lmdb")

    def store_many(self, images: np.ndarray, labels: np.ndarray) -> None:
        count = len(images)
        env = lmdb.open(self.path(count), map_size=count * images[0].nbytes * 10)
        with env.begin(write=True) as txn:
            for index in range(count):
                value = CIFAR_Image(images[index], labels[index])
                txn.put(f"{index:08}".encode("ascii"), pickle.dumps(value))
        env.close()

    def read_many(self, num_images: int) -> tuple[list, list]:
        images, labels = [], []
        env = lmdb.open(self.path(num_images), readonly=True)
        with env.begin() as txn:
            for index in range(num_images):
                record = pickle.loads(txn.get(f"{index:08}".encode("ascii")))
                images.append(record.get_image())
                labels.append(record.label)
        env.close()
        return images, labels


class ArticleHdf5:
    name = "hdf5"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, num_images: int) -> Path:
        return self.root / f"{num_images}_many.h5"

    def store_many(self, images: np.ndarray, labels: np.ndarray) -> None:
        file = h5py.File(self.path(len(images)), "w")
        file.create_dataset("images", np.shape(images), h5py.h5t.STD_U8BE, data=images)
        file.create_dataset("meta", np.shape(labels), h5py.h5t.STD_U8BE, data=labels)
        file.close()

    def read_many(self, num_images: int) -> tuple[np.ndarray, np.ndarray]:
        file = h5py.File(self.path(num_images), "r+")
        images = np.array(file["/images"]).astype("uint8")
        labels = np.array(file["/meta"]).astype("uint8")
        file.close()
        return images, labels


ARTICLE_STORES = {store.name: store for store in (ArticleDisk, ArticleLmdb, ArticleHdf5)}

"""The NumPy floor: the contract (it takes no compression= and writes with one writer)."""

from __future__ import annotations

from pathlib import Path

from stores.contract import Damage, StoreContract
from stores.faults import batch_file, truncate_to_half


class TestNpy(StoreContract):
    method = "npy"
    chunks_keep_bytes = (False, True)  # the header is rewritten with the final count: np.save's bytes
    damage_cases = [
        Damage("images-cut-in-half", batch_file("images.npy"), truncate_to_half, "read_many", 10),
        Damage("labels-missing", batch_file("labels.npy"), Path.unlink, "read_many", 10),
        Damage("single-npz-cut", lambda s: s.root / "single" / "2.npz", truncate_to_half, "read_single", 2),
    ]

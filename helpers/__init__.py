"""The image storage report's library, in layers (each imports only those before it):

- ``helpers.core``: errors, file operations, disk-space preflight, measurement, the shared process pool;
- ``helpers.codecs``: every codec and store filter by name, one registry;
- ``helpers.stores``: the Store contract, one module per storage method, the registry;
- ``helpers.datasets``: CIFAR-10, the synthetic stand-ins, folders of images, scans;
- ``helpers.loader`` and ``helpers.convert``: training-loop reads, and conversion at scale on Dask;
- ``helpers.report``: the report's parameters, results, figures, chapters and pipeline.

``from helpers import stores, datasets, codecs, loader, convert, measure, errors`` is the public surface;
``measure`` and ``errors`` live in ``helpers.core`` and are re-exported here.
"""

import sys

from helpers.core import errors, measure

# ``import helpers.errors`` and ``from helpers.measure import ...`` keep working beside the package attributes.
sys.modules[f"{__name__}.errors"] = errors
sys.modules[f"{__name__}.measure"] = measure

__version__ = "0.1.0"
__all__ = ["errors", "measure"]

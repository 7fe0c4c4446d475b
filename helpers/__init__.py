"""The image storage report's library: datasets, stores, measurement, results, plots and the report."""

__version__ = "0.1.0"

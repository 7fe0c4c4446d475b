"""Exceptions the library raises, so callers can tell bad input from a damaged store or a full disk."""

from __future__ import annotations


class StorageReportError(Exception):
    """Base of every error this library raises on purpose."""


class ImageFormatError(StorageReportError, ValueError):
    """An image, batch or label is not something the stores accept (dtype, shape, length)."""


class UnknownMethodError(StorageReportError, KeyError):
    """A storage method name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class ImageNotFoundError(StorageReportError, KeyError):
    """An image id, or a number of images, that the store never wrote."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IncompleteStoreError(StorageReportError):
    """A write was interrupted: the store holds a partial batch that must not be read."""


class CorruptStoreError(StorageReportError):
    """A file of the store is damaged, truncated or missing; the message names it."""


class InsufficientSpaceError(StorageReportError, OSError):
    """Not enough free space for a write; the message gives bytes needed and bytes free."""


class DatasetError(StorageReportError):
    """A dataset that is missing, malformed or unsafe to load."""


class UnknownCodecError(StorageReportError, ValueError):
    """A codec name that is not known, or a level or quality out of its range, or a codec a method refuses."""

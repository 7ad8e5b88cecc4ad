"""Session files (HDF5): schema, live writer, validating reader, summaries.

The format is specified in ``docs/file-format.md`` and defined as data in
:mod:`lumbar.storage.schema`.
"""
from lumbar.storage.reader import Session, read_channel, read_session
from lumbar.storage.summary import summarize
from lumbar.storage.validate import ValidationReport, validate_file
from lumbar.storage.writer import SessionWriter, write_group, write_session

__all__ = [
    "Session",
    "SessionWriter",
    "ValidationReport",
    "read_channel",
    "read_session",
    "summarize",
    "validate_file",
    "write_group",
    "write_session",
]

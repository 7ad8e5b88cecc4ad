"""The documentation names every part of the file format the code defines."""
from __future__ import annotations

from lumbar.storage import schema
from lumbar.types import SampleFlag


def test_file_format_page_lists_schema(repo_root):
    text = (repo_root / "docs" / "file-format.md").read_text(encoding="utf-8")
    names = [s.name for s in schema.SENSOR_DATASETS + schema.EVENT_DATASETS]
    names += list(schema.SENSOR_ATTRS) + list(schema.SESSION_ATTRS)
    names += [schema.SESSION, schema.SENSORS, schema.EVENTS, schema.DERIVED, schema.METRICS, schema.TRUTH]
    names += [schema.ATTR_FORMAT_NAME, schema.ATTR_FORMAT_VERSION, schema.ATTR_COMPLETE, schema.FORMAT_NAME]
    missing = [n for n in names if n not in text]
    assert not missing, f"docs/file-format.md does not mention {missing}"
    assert f"version {schema.FORMAT_VERSION}" in text


def test_conventions_page_lists_flags(repo_root):
    text = (repo_root / "docs" / "conventions.md").read_text(encoding="utf-8")
    for flag in SampleFlag:
        if flag.name != "NONE":
            assert f"`{flag.name}`" in text and f"| {int(flag)} |" in text

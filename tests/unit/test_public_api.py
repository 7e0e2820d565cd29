"""The public surface is explicit and tested (like httpx's test_exported_members)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import stream_monitor

SUBPACKAGES = [
    "stream_monitor.config",
    "stream_monitor.events",
    "stream_monitor.devtools.broker",
    "stream_monitor.kafka",
]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(stream_monitor).items()
        if not name.startswith("_")
        and not getattr(value, "__name__", "").startswith("stream_monitor.")
        and not isinstance(value, type(stream_monitor))
    }
    public.discard("annotations")
    assert set(stream_monitor.__all__) == public | {"__version__"}


def test_all_is_sorted_and_resolvable() -> None:
    assert list(stream_monitor.__all__) == sorted(stream_monitor.__all__)
    for name in stream_monitor.__all__:
        assert hasattr(stream_monitor, name), name


@pytest.mark.parametrize("module_name", SUBPACKAGES)
def test_subpackage_all_resolvable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module_name}.{name}"


def test_py_typed_is_shipped() -> None:
    assert (Path(stream_monitor.__file__).parent / "py.typed").is_file()


def test_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert stream_monitor.__version__ == version("stream-monitor")


def test_core_does_not_import_io_layers() -> None:
    """The event schemas and config are pure: no aiokafka, no web stack, no clock module."""
    root = Path(stream_monitor.__file__).parent
    for folder in ("events", "config"):
        for path in (root / folder).glob("*.py"):
            text = path.read_text()
            assert "aiokafka" not in text, path
            assert "import time" not in text, path


def test_the_native_stub_names_what_the_module_exports() -> None:
    """``_native.pyi`` is what mypy believes: a name there that the module lacks would type
    check and fail at run time."""
    import ast

    from stream_monitor import _native

    stub = ast.parse((Path(stream_monitor.__file__).parent / "_native.pyi").read_text())
    named = {n.name for n in stub.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    named |= {
        n.target.id
        for n in stub.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    exported = {name for name in dir(_native) if not name.startswith("__")}
    assert named == exported


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("stream_monitor.client", "stream_monitor.integrations.client"),
        ("stream_monitor.oip", "stream_monitor.integrations.oip"),
    ],
)
def test_the_documented_import_paths_of_moved_modules_still_work(old: str, new: str) -> None:
    """Model servers import the SDK from its first home; the names are the new home's own."""
    before, after = importlib.import_module(old), importlib.import_module(new)
    assert before.__all__ == after.__all__
    for name in after.__all__:
        assert getattr(before, name) is getattr(after, name), name

"""Every property test runs the same inputs on every run: CI must not go red by chance.

Finds each test module that uses hypothesis and checks each `@given` test for
`derandomize=True` or an explicit `@seed`, so a new fuzz test without one fails here.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _hypothesis_modules() -> list[str]:
    return sorted(
        p.stem
        for p in TESTS.glob("test_*.py")
        if p.name != Path(__file__).name and "from hypothesis" in p.read_text(encoding="utf-8")
    )


def test_some_modules_use_hypothesis() -> None:
    assert "test_robust_parsers" in _hypothesis_modules()


@pytest.mark.parametrize("module", _hypothesis_modules())
def test_every_property_test_is_seeded(module: str) -> None:
    mod = importlib.import_module(module)
    tests = [
        (name, fn)
        for name, fn in inspect.getmembers(mod, inspect.isfunction)
        if name.startswith("test_") and getattr(fn, "is_hypothesis_test", False)
    ]
    if not tests:  # @given inside a test function: only its text can be read
        text = (TESTS / f"{module}.py").read_text(encoding="utf-8")
        seeded = text.count("derandomize=True") + text.count("@seed(")
        assert seeded >= text.count("@given("), f"{module}: a @given without derandomize/seed"
        return
    unseeded = [
        name
        for name, fn in tests
        if not fn._hypothesis_internal_use_settings.derandomize
        and getattr(fn, "_hypothesis_internal_use_seed", None) is None
    ]
    assert unseeded == [], f"{module}: not derandomized or seeded: {unseeded}"

"""The public API's own promises: every public function has type hints and a docstring with an
example, and every example runs as written (doctest)."""

from __future__ import annotations

import doctest
import inspect

import pytest

import torchnp

# Functions, and the native entries that front to_numpy / from_numpy (their __wrapped__).
FUNCTIONS = [n for n in torchnp.__all__ if inspect.isfunction(inspect.unwrap(getattr(torchnp, n)))]


def test_the_conversions_are_checked_here():
    assert {"to_numpy", "from_numpy", "tree_to_numpy", "collate"} <= set(FUNCTIONS)


@pytest.mark.single_engine
@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_functions_have_hints_and_an_example(name):
    fn = getattr(torchnp, name)
    sig = inspect.signature(fn)
    missing = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not missing, f"{name}: parameters without type hints: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return hint"
    assert ">>>" in (inspect.getdoc(fn) or ""), f"{name}: no example in its docstring"


@pytest.mark.parametrize("name", [*FUNCTIONS, "Transfer"])
def test_docstring_examples_run(engine, name):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(getattr(torchnp, name), name, globs={}):
        result = runner.run(test, out=lambda _: None)
        assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples fail"

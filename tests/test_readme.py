"""The README's example runs as written."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs():
    text = README.read_text()
    code = re.search(r"## Example\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["J"].shape == (2, 8, 8)
    assert namespace["gw"].shape == (1024,)


def test_docstring_examples():
    """Every public function's docstring example prints what it says."""
    import doctest

    import numpy as np

    import fastact as fa

    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    functions = [*fa.ELEMENTWISE, *fa.ROWWISE, fa.prelu]
    for f in functions:
        tests = finder.find(f.__doc__ or "", f.name, globs={"np": np, "fastact": fa})
        assert tests and tests[0].examples, f"{f.name} has no example"
        for t in tests:
            runner.run(t)
    assert runner.failures == 0

"""Frontend test options: `pytest tests/frontend --update-goldens` rewrites the golden files.

Goldens are the review aid (rendered diagnostics); regenerate them with the flag, then read
the diff before committing. The tests themselves assert on error codes and lines.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite the frontend's golden .err files instead of comparing")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens", default=False))

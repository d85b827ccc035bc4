"""nbval masks printed round-off (which differs between CPUs) and nothing else."""

from __future__ import annotations

import re
from configparser import ConfigParser
from pathlib import Path

import pytest

CONFIG = Path(__file__).parent / "nbval_sanitize.cfg"


def sanitize(text: str) -> str:
    """Apply the patterns as nbval does (each section's regex → replace, in order)."""
    parser = ConfigParser()
    parser.read(CONFIG, encoding="utf-8")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


@pytest.mark.parametrize("a, b", [
    ("max |diff| 3.3e-16", "max |diff| 3.9e-16"),
    ("max |diff| 0.0e+00", "max |diff| 4.4e-16"),
    ("error -1.2e-13 and 7.0e-10", "error 5.5e-12 and 1.1e-09"),
])
def test_round_off_is_masked(a, b):
    assert sanitize(a) == sanitize(b)


@pytest.mark.parametrize("a, b", [
    ("loss 1.2e-03", "loss 1.3e-03"),          # a small but meaningful number
    ("accuracy 0.97", "accuracy 0.98"),
    ("ratio 1.5e+00", "ratio 2.5e+00"),
    ("max |diff| 3.3e-08", "max |diff| 3.3e-16"),  # not round-off any more: it must show
])
def test_meaningful_numbers_are_compared(a, b):
    assert sanitize(a) != sanitize(b)


def test_the_root_conftest_passes_the_file_to_nbval(pytestconfig):
    if getattr(pytestconfig.option, "nbval_sanitize_with", None) is None:
        pytest.skip("nbval is not loaded (-p no:nbval)")
    assert Path(pytestconfig.option.nbval_sanitize_with).resolve() == CONFIG.resolve()

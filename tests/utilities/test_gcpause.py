"""utilities.gcpause: the collector paused for a block and restored as it was."""

from __future__ import annotations

import gc

import pytest

from utilities.gcpause import gc_paused


def test_the_collector_is_off_inside_and_as_it_was_after_even_on_an_error() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()   # it was off before: it stays off
    finally:
        gc.enable()

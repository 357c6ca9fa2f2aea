"""Process-wide helpers of the training loops."""

from __future__ import annotations

import gc

from vibethinker.utils.runtime import long_lived_objects_frozen


def test_warm_objects_leave_the_collectors_view_until_the_loop_ends():
    warm = [[i] for i in range(1000)]  # alive when the loop is warm
    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen() as freeze:
        assert gc.get_freeze_count() == 0  # nothing happens before the loop says it is warm
        freeze()
        frozen = gc.get_freeze_count()
        assert frozen >= len(warm)
        grown = [[i] for i in range(500)]  # made by the next warm step (torch.compile's dynamic-shape graphs)
        freeze()
        freeze()
        assert gc.get_freeze_count() >= frozen + len(grown)
        after_warm = gc.get_freeze_count()
        later = [[i] for i in range(500)]  # a warm loop's objects stay collectable
        freeze()
        assert gc.get_freeze_count() == after_warm and later
    assert gc.get_freeze_count() == 0

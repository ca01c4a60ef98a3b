"""Django's task priority (-100 to 100, higher runs first) onto pgjobs' (0 to 4, lower first).

Pure, so the table in the README is the one the code applies, and a unit
test walks all 201 values.
"""

from __future__ import annotations

#: (lowest Django priority of the band, the pgjobs priority), highest band first.
BANDS: tuple[tuple[int, int], ...] = (
    (60, 0),  # 60 to 100: CRITICAL
    (20, 1),  # 20 to 59: HIGH
    (-19, 2),  # -19 to 19: NORMAL, with Django's default of 0
    (-59, 3),  # -59 to -20: LOW
    (-100, 4),  # -100 to -60: BULK
)


def to_pgjobs(priority: int) -> int:
    """The pgjobs priority of a Django priority from -100 to 100.

    Raises:
        ValueError: the priority is outside -100 to 100 (Django refuses those first).
    """
    if not -100 <= priority <= 100:
        raise ValueError(f"a Django task priority is from -100 to 100, got {priority!r}")
    for lowest, mapped in BANDS:
        if priority >= lowest:
            return mapped
    raise AssertionError("unreachable: the last band starts at -100")

"""Small profiles for the simulator tests."""

from __future__ import annotations

from typing import Any

from server.simulate.profile import Profile


def profile(**overrides: Any) -> Profile:
    """One dialect, two specialists all day, fixed times: a readable default."""
    document: dict[str, Any] = {
        "name": "test",
        "start": "08:00",
        "seed": 3,
        "handle_time": {"default": {"distribution": "fixed", "mean_s": 100}},
        "wrap_up": {"distribution": "fixed", "mean_s": 0},
        "desk": {"accept_delay": {"distribution": "fixed", "mean_s": 0}},
        "arrivals": {"cmn": [10, 10]},
        "roster": [
            {"id": "S1", "dialects": {"cmn": 5}, "shift": "08:00-20:00"},
            {"id": "S2", "dialects": {"cmn": 5}, "shift": "08:00-20:00"},
        ],
    }
    document.update(overrides)
    return Profile.model_validate(document)

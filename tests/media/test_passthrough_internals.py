"""The aiortc internals the media node relies on are still there.

If this fails after an aiortc upgrade, read ``signaling/media/passthrough.py``
against the new aiortc before widening ``TESTED_AIORTC_VERSIONS`` and the pin in
``pyproject.toml``: the node would otherwise decode every call, or drop its media.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from aiortc.rtcrtpsender import RTCRtpSender

from signaling.media import passthrough
from signaling.media.passthrough import AiortcInternalsChanged, check_internals


def test_installed_aiortc_has_the_internals_the_node_uses() -> None:
    check_internals()
    assert version("aiortc").startswith(passthrough.TESTED_AIORTC_VERSIONS)


def test_a_moved_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcInternalsChanged, match="_send_keyframe"):
        check_internals()


def test_an_untested_aiortc_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passthrough.aiortc, "__version__", "2.0.0")
    with pytest.raises(AiortcInternalsChanged, match=r"aiortc 2\.0\.0"):
        check_internals()

"""The side-by-side figures of ``bench/relay.py --backend janus``."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

JANUS_TARGET_MS = 10.0
RECORDER_TARGET_MS = 10.0
WHOLE_RATIO_TARGET = 4.0


def report_backends(results: dict[str, Any], fps: int, verdict: Callable[[bool], str]) -> None:
    """Print the figures; ``verdict`` words each target's outcome and keeps the misses
    for the script's exit status."""
    aiortc, janus, floor = results["relay-recorded"], results["janus"], results["p2p"]
    print("\nCPU ms per call-second by part (recorded calls):")
    header = ("run", "janus", "node loop", "rtp pump", "writers", "whole", "calls/core")
    print("{:<15} {:>7} {:>10} {:>9} {:>8} {:>7} {:>11}".format(*header))
    srtp = results.get("janus-srtp")
    for r in (aiortc, janus, *([srtp] if srtp is not None else [])):
        parts = r.parts
        whole = r.cpu_ms_per_call_s or 0.0
        per_core = 1000 / whole if whole else 0.0
        print(
            f"{r.name:<15} {parts.get('janus', 0.0):>7.1f} {parts.get('loop', 0.0):>10.1f} "
            f"{parts.get('rtp', 0.0):>9.1f} {parts.get('recorder', 0.0):>8.1f} {whole:>7.1f} "
            f"{per_core:>11.1f}"
        )
    janus_ms = janus.parts.get("janus", 0.0)
    # Through Janus everything the node does is the recorder's: plain RTP in and on
    # to the other leg, put into frames (the pump thread), frames to the taps (the
    # loop), muxed, sealed and stored (the writer threads).
    recorder_ms = sum(janus.parts.get(part, 0.0) for part in ("loop", "rtp", "recorder"))
    if srtp is not None and srtp.cpu_ms_per_call_s and janus.cpu_ms_per_call_s:
        # The verdicts below are on "janus": Janus beside the node on loopback, as
        # deployed, where CLOUDBRANCH_JANUS_PLAIN_SRTP=auto leaves the plain legs clear.
        print(
            f"SDES-SRTP between Janus and the node (janus-srtp, as off loopback): "
            f"{srtp.cpu_ms_per_call_s:.1f} ms per call-second, against "
            f"{janus.cpu_ms_per_call_s:.1f} without"
        )
    print(
        f"Janus's own CPU: {janus_ms:.1f} ms per call-second "
        f"(target <= {JANUS_TARGET_MS:.0f}): {verdict(janus_ms <= JANUS_TARGET_MS)}"
    )
    print(
        f"recorder (RTP pump: receive, relay, depacketise; loop; writer threads): "
        f"{recorder_ms:.1f} ms per call-second (target <= {RECORDER_TARGET_MS:.0f}): "
        f"{verdict(recorder_ms <= RECORDER_TARGET_MS)}"
    )
    if aiortc.cpu_ms_per_call_s and janus.cpu_ms_per_call_s and aiortc.fps and janus.fps:
        # Per delivered frame, so a starved run does not look cheap.
        aiortc_per_frame = aiortc.cpu_ms_per_call_s / statistics.mean(aiortc.fps)
        janus_per_frame = janus.cpu_ms_per_call_s / statistics.mean(janus.fps)
        ratio = aiortc_per_frame / janus_per_frame
        print(
            f"whole recorded call: {ratio:.1f}x cheaper through Janus per delivered frame "
            f"({aiortc.cpu_ms_per_call_s / janus.cpu_ms_per_call_s:.1f}x per call-second) "
            f"(target >= {WHOLE_RATIO_TARGET:.0f}x): {verdict(ratio >= WHOLE_RATIO_TARGET)}"
        )
    for r in (aiortc, janus):
        if r.fps:
            print(
                f"delivered fps {r.name}: worst leg {min(r.fps):.1f}, median "
                f"{statistics.median(r.fps):.1f} of {fps}"
            )
    for r in (aiortc, janus):
        if r.latency_ms is not None and floor.latency_ms is not None:
            print(
                f"one-way video latency {r.name}: {r.latency_ms:.1f} ms, p2p "
                f"{floor.latency_ms:.1f} ms, added {r.latency_ms - floor.latency_ms:.1f} ms"
            )

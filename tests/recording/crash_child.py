"""A process that records a call and is killed mid-way (by tests/recording/test_crash.py).

Feeds the first ``FED_S`` seconds of the call, waits until its writer has taken
everything, says ``fed`` and then waits to be killed with open segments.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from server.db.engine import make_engine, make_sessionmaker
from server.recordings.service import RecordingService
from tests.recording.media import call_media
from tests.recording.support import RelaySettings, _at

FED_S = 9.0


async def main(settings_json: str, started_at: float) -> None:
    settings = RelaySettings(**json.loads(settings_json))
    engine = make_engine(settings.database_url)
    service = RecordingService(settings, make_sessionmaker(engine))
    tap = await service.open("call-crash", started_at=started_at)
    for frame in call_media(12.0, 0.0):
        if frame.arrival <= FED_S:
            tap.write(_at(frame, started_at))
    writer = service.open_taps["call-crash"].writer
    assert writer is not None
    while writer.pending or not writer.queue.empty():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the writer is done with the last frame it took
    print("fed", flush=True)
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
    time.sleep(0)

"""A specialist desk in a few lines: take the next call, accept it, end it, wrap it up.

export DESK=<a specialist token from POST /api/v1/desk/login>
.venv/bin/python docs/examples/desk.py [BASE_URL]      # default http://127.0.0.1:8080
"""

import asyncio
import os
import sys

import aiohttp


async def desk(base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(base + "/api/v1/ws") as ws:
        await ws.send_json({"type": "hello", "token": token})
        print(await ws.receive_json())  # welcome
        await http.put(base + "/api/v1/desk/presence", json={"state": "available"}, headers=auth)
        while (msg := await ws.receive_json())["type"] != "call.offered":
            print(msg)
        print("offered:", msg["customer"]["display_name"], msg["context"])
        call = f"{base}/api/v1/calls/{msg['call_id']}"
        r = await http.post(call + "/accept", json={"offer_id": msg["offer_id"]}, headers=auth)
        print("accepted:", (await r.json())["state"])  # connecting (media set-up follows)
        await http.post(call + "/end", headers=auth)  # -> wrap_up
        r = await http.post(call + "/wrap-up", json={"code": "balance_inquiry"}, headers=auth)
        print("wrapped up:", (await r.json())["state"])  # ended


if __name__ == "__main__":
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    asyncio.run(desk(base_url.rstrip("/"), os.environ["DESK"]))

"""A tiny stand-in for ``sandbox.app`` (same arguments), used only while that module is absent."""

from __future__ import annotations

import argparse
import asyncio
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


def build(revision: str, startup_delay: float) -> Starlette:
    started = time.monotonic()

    async def health(request: Request) -> JSONResponse:
        headers = {"X-Revision": revision}
        if time.monotonic() - started < startup_delay:
            return JSONResponse({"status": "starting"}, status_code=503, headers=headers)
        return JSONResponse({"status": "ok"}, headers=headers)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        sid = websocket.path_params["session_id"]
        while True:
            msg = await websocket.receive_json()
            await websocket.send_json({"type": "pong", "id": msg.get("id"), "session_id": sid})

    return Starlette(routes=[Route("/health", health), WebSocketRoute("/ws/{session_id}", ws)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", default="")
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--revision", default="local")
    args = parser.parse_args()
    delay = 0.0
    for fault in filter(None, args.faults.split(",")):
        name, _, value = fault.partition(":")
        if name == "startup_delay":
            delay = float(value)
    uvicorn.run(build(args.revision, delay), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()

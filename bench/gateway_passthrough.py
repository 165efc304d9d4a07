"""A bare pass-through proxy for the gateway bench: the floor under OpsGate's added latency.

The same server stack (uvicorn, httptools, uvloop) and the same upstream client as OpsGate,
on the same pinned core, forwarding each chat request to the mock with no governance at all
(no authentication, policy, guard, quota, audit or metrics). What it adds over calling the
mock directly is the cost of one Python HTTP hop to another core on the bench machine, which
every proxy pays; OpsGate's added latency minus this is what its governance costs.

`python -m bench.gateway_passthrough --port P --mock URL`
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn

from opsgate.gateway.upstream_http import UpstreamClient

ROUTES = {"ops-default": "ok", "slow": "delay-50"}


def build(mock: str) -> Any:
    client = UpstreamClient(
        connect_timeout=5, idle_timeout=60, max_connections=512, max_keepalive=128
    )
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-mock"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        model = orjson.loads(body).get("model", "")
        url = f"{mock}/{ROUTES.get(model, 'ok')}/v1/chat/completions"
        data = await client.post_json(url, body, headers, 30.0)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mock", required=True)
    args = ap.parse_args()
    uvicorn.run(
        build(args.mock),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        server_header=False,
    )


if __name__ == "__main__":
    main()

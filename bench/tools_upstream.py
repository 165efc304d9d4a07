"""The upstream MCP server of the tools bench, in its own process.

Official SDK, low-level `Server`, streamable HTTP in stateless mode with JSON responses (SSE
streams with --sse).
Two tools: `echo` (a trivial read) and `act` (the action held for approval; it appends
`{"n": ..., "t": time.time()}` to the starts file the moment it begins, so the bench can
measure approval decision -> execution start across processes).

    python -m bench.tools_upstream --port P --starts FILE [--sse]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import mcp.types as t
import orjson
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

TOOLS = [
    t.Tool(
        name="echo",
        description="Echo the given text back.",
        input_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"text": {"type": "string", "maxLength": 1000}},
            "required": ["text"],
        },
    ),
    t.Tool(
        name="act",
        description="A change that needs approval; reports when it started.",
        input_schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {"n": {"type": "integer", "minimum": 0}},
            "required": ["n"],
        },
    ),
]


def build_server(starts: Path) -> Server[Any]:
    out = starts.open("ab", buffering=0)  # one unbuffered write per start: readable at once

    async def list_tools(
        ctx: ServerRequestContext[Any], params: t.PaginatedRequestParams | None
    ) -> t.ListToolsResult:
        return t.ListToolsResult(tools=TOOLS)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: t.CallToolRequestParams
    ) -> t.CallToolResult:
        args = params.arguments or {}
        if params.name == "act":
            started = time.time()
            out.write(orjson.dumps({"n": int(args["n"]), "t": started}) + b"\n")
            text = orjson.dumps({"n": int(args["n"]), "started": started}).decode()
            return t.CallToolResult(content=[t.TextContent(type="text", text=text)])
        return t.CallToolResult(content=[t.TextContent(type="text", text=str(args["text"]))])

    return Server("bench-upstream", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--starts", type=Path, required=True)
    ap.add_argument("--sse", action="store_true", help="answer as SSE streams, not JSON")
    args = ap.parse_args()
    server = build_server(args.starts)
    app = server.streamable_http_app(stateless_http=True, json_response=not args.sse)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()

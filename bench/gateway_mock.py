"""The bench's mock provider: the test fake (tests/fakes/provider.py) in its own process.

`python -m bench.gateway_mock --port N` ; the 50 ms variant is its `/delay-50/v1` path.
"""

from __future__ import annotations

import argparse

import uvicorn
from tests.fakes.provider import FakeProvider


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    fake = FakeProvider()
    fake.state.record = False  # a long run must not grow the mock's memory
    uvicorn.run(
        fake.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="off",
    )


if __name__ == "__main__":
    main()

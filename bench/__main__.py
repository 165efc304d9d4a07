"""`python -m bench NAME [args]` runs bench/NAME.py's main()."""

from __future__ import annotations

import importlib
import sys


def main() -> None:
    if len(sys.argv) < 2:
        print("usage: python -m bench NAME [args...]  (e.g. audit, whoami)")
        raise SystemExit(2)
    name = sys.argv[1]
    mod = importlib.import_module(f"bench.{name}")
    sys.argv = [f"bench.{name}", *sys.argv[2:]]
    mod.main()


if __name__ == "__main__":
    main()

"""Agent loop caps: a runaway agent cannot hammer tools or repeat one call forever.

Two sliding one-minute windows per agent principal: total tool calls, and calls with the
same tool and arguments (the signature of a loop). Kept in process memory: each replica
enforces its own window, which bounds a loop without adding a network hop to every call.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from opsgate.audit.canonical import canonical

WINDOW = 60.0


class LoopCaps:
    def __init__(self, per_minute: int, repeat_limit: int, max_agents: int = 100_000) -> None:
        self.per_minute, self.repeat_limit, self.max_agents = per_minute, repeat_limit, max_agents
        self._calls: dict[str, deque[tuple[float, bytes]]] = {}

    def check(self, agent: str, tool: str, args: dict[str, Any]) -> str | None:
        """Record the call; a reason string if it breaks a cap (then it is not recorded)."""
        if self.per_minute <= 0 and self.repeat_limit <= 0:
            return None
        now = time.monotonic()
        calls = self._calls.get(agent)
        if calls is None:
            if len(self._calls) >= self.max_agents:
                self._forget_idle(now)
            calls = self._calls[agent] = deque()
        while calls and now - calls[0][0] > WINDOW:
            calls.popleft()
        if self.per_minute > 0 and len(calls) >= self.per_minute:
            return f"agent loop cap: more than {self.per_minute} tool calls in a minute"
        sig = tool.encode() + b"\0" + canonical(args)
        if self.repeat_limit > 0 and sum(1 for _, s in calls if s == sig) >= self.repeat_limit:
            return (
                f"agent loop cap: the same {tool} call was made {self.repeat_limit} times "
                "in a minute; change the arguments or ask a person"
            )
        calls.append((now, sig))
        return None

    def _forget_idle(self, now: float) -> None:
        for agent in [a for a, c in self._calls.items() if not c or now - c[-1][0] > WINDOW]:
            del self._calls[agent]

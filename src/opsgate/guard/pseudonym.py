"""Reversible pseudonyms for one request, restored in the response (also when streamed)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

# Python re: a fixed shape with bounded repeats (no backtracking blow-up), and unlike the
# re2 module it accepts any str, including lone surrogates.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,62})_(\d{1,6})>")


@dataclass(slots=True)
class _Entry:
    value: str
    restorable: bool


class PseudonymVault:
    """value <-> `<TYPE_n>` for one request: the same value gets the same placeholder.

    Entries added with `restorable=False` (values the principal may not see, e.g. from a
    document they are not cleared for) are never put back by `restore`.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, _Entry] = {}
        self._counters: dict[str, int] = {}
        self._taken: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_placeholder)

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(self._by_placeholder)

    def reserve(self, text: str) -> None:
        """Mark placeholder-shaped strings already in `text` as taken, so a client cannot
        make the response restore a value under a placeholder it wrote itself."""
        for m in PLACEHOLDER.finditer(text):
            self._taken.add(m.group(0))

    def placeholder(self, entity: str, value: str, *, restorable: bool = True) -> str:
        key = (entity, value)
        existing = self._by_key.get(key)
        if existing is not None:
            if not restorable:
                self._by_placeholder[existing].restorable = False
            return existing
        label = "".join(c if c.isalnum() else "_" for c in entity.upper()) or "VALUE"
        n = self._counters.get(label, 0)
        while True:
            n += 1
            ph = f"<{label}_{n}>"
            if ph not in self._taken:
                break
        self._counters[label] = n
        self._by_key[key] = ph
        self._by_placeholder[ph] = _Entry(value, restorable)
        return ph

    def restore(self, text: str, *, allowed: bool = True) -> str:
        """Put the values back; nothing is restored when `allowed` is false."""
        if not allowed or not self._by_placeholder or "<" not in text:
            return text

        def repl(m: re.Match[str]) -> str:
            entry = self._by_placeholder.get(m.group(0))
            return entry.value if entry is not None and entry.restorable else m.group(0)

        return PLACEHOLDER.sub(repl, text)

    def max_len(self) -> int:
        return max((len(p) for p in self._by_placeholder), default=0)


class StreamRestorer:
    """Restores placeholders in a stream of text fragments.

    Only a tail that could still become a known placeholder (e.g. `<EM` before
    `AIL_1>` arrives) is held back; everything else is emitted at once.
    """

    def __init__(self, vault: PseudonymVault, *, allowed: bool = True) -> None:
        self.vault = vault
        self.allowed = allowed and len(vault) > 0
        self._pending = ""
        self._prefixes = self._all_prefixes() if self.allowed else frozenset()

    def _all_prefixes(self) -> frozenset[str]:
        out: set[str] = set()
        for ph in self.vault.placeholders:
            out.update(ph[:i] for i in range(1, len(ph)))
        return frozenset(out)

    def feed(self, fragment: str) -> str:
        if not self.allowed:
            return fragment
        buf = self._pending + fragment
        cut = buf.rfind("<")
        if cut >= 0 and buf[cut:] in self._prefixes:
            self._pending = buf[cut:]
            buf = buf[:cut]
        else:
            self._pending = ""
        return self.vault.restore(buf)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self.vault.restore(rest) if self.allowed else rest


async def restore_sse(
    events: AsyncIterable[bytes], vault: PseudonymVault, *, allowed: bool
) -> AsyncIterator[bytes]:
    """Restore placeholders in an OpenAI chat-completions SSE stream.

    `events` yields complete SSE events (`data: {...}\\n\\n`). Each choice's
    `delta.content` goes through its own `StreamRestorer`; text still held back when the
    stream ends is sent in one extra chunk before `data: [DONE]`.
    """
    restorers: dict[int, StreamRestorer] = {}
    template: dict[str, Any] | None = None
    async for event in events:
        payload = event.strip()
        if not payload.startswith(b"data:"):
            yield event
            continue
        data = payload[5:].strip()
        if data == b"[DONE]":
            tail = _tail_chunk(template, restorers)
            if tail is not None:
                yield tail
            yield event
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            yield event
            continue
        template = {k: obj[k] for k in ("id", "object", "created", "model") if k in obj}
        for choice in obj.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            idx = int(choice.get("index", 0))
            r = restorers.setdefault(idx, StreamRestorer(vault, allowed=allowed))
            if isinstance(delta.get("content"), str):
                delta["content"] = r.feed(delta["content"])
            if choice.get("finish_reason"):
                rest = r.flush()  # the choice ends here: nothing may stay held back
                if rest:
                    delta["content"] = (delta.get("content") or "") + rest
        yield b"data: " + orjson.dumps(obj) + b"\n\n"


def _tail_chunk(
    template: dict[str, Any] | None, restorers: dict[int, StreamRestorer]
) -> bytes | None:
    choices = []
    for idx, r in sorted(restorers.items()):
        rest = r.flush()
        if rest:
            choices.append({"index": idx, "delta": {"content": rest}, "finish_reason": None})
    if not choices:
        return None
    return b"data: " + orjson.dumps({**(template or {}), "choices": choices}) + b"\n\n"

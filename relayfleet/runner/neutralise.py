"""The one way text becomes session input: every event, from every source, on every path.

Router items, `tell`, `handoff`, plugin `emit` and re-sends all reach a session through the
runner; `event_text` turns an inbox event into the exact text the session is given, on the
channel path (`channel_payload`) and the typed path (`typed_payload`) alike:

- control characters (C0, DEL, C1, ESC included) are removed, so nothing can end a bracketed
  paste early or reach the terminal as a keystroke;
- line breaks of every kind (CR, LF, VT, FF, NEL, U+2028/9) are folded into ` ⏎ `, so the text
  is one line and no line can start with a forged `[FROM …]`;
- the frame `[FROM <source> …]` comes from the runner: a body's own leading frame is kept only
  when it names the event's source, otherwise the runner's frame is put in front; a `[FROM`
  anywhere else is made inert (`(FROM`);
- `<channel` and `</channel` are made inert (`‹channel`), so a body cannot close Claude Code's
  `<channel …>` wrapper and open a forged one.

A burst of events coalesced into one turn (`batch_event`) is one line too: the runner's own
`[FROM relay | N events …]` header, then each event as `⏎ (i/N id=<id>) <event_text>`, so every
part keeps its own frame and its id to acknowledge. Only the runner can make a batch: the marker
is a tuple, which no JSON inbox line can produce.

Pure: no I/O. Pinned by a Hypothesis property test on the exact bytes and payload.
"""

from __future__ import annotations

import re
from typing import Any

RESEND_MARK = "[re-send] "
FOLD = " ⏎ "
PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"

_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[\t ]+")
_CHANNEL_TAG = re.compile(r"<(\s*/?\s*channel)", re.IGNORECASE)
_FRAME = re.compile(r"^\[FROM ([^\]\s|]+)[^\][]*\]")
_INNER_FROM = re.compile(r"\[(\s*FROM)", re.IGNORECASE)
_SOURCE_SAFE = re.compile(r"[^A-Za-z0-9._@/-]")
_META_SAFE = re.compile(r"[^A-Za-z0-9._:/#@+ -]")


def clean(text: str) -> str:
    """One inert line: no controls, breaks folded, `<channel` tags defused."""
    text = _BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text).replace("\t", " ")
    lines = [_SPACES.sub(" ", ln).strip() for ln in text.split("\n")]
    text = FOLD.join(ln for ln in lines if ln)
    return _CHANNEL_TAG.sub("\u2039\\1", text)


def source_name(event: dict[str, Any]) -> str:
    """The event's source as the frame shows it (no brackets, spaces or controls)."""
    return _SOURCE_SAFE.sub("", str(event.get("source") or ""))[:64]


BATCH_KEY = "relayfleet.batch"
_ID_SAFE = re.compile(r"[^A-Za-z0-9._:@-]")


def batch_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Several inbox events as one delivery (oldest first); see the module docstring."""
    return {
        "id": str(events[0].get("id")),
        "source": "relay",
        BATCH_KEY: tuple(events),
    }


def batch_parts(event: dict[str, Any]) -> tuple[dict[str, Any], ...] | None:
    """The events inside a batch made by `batch_event`, or None for an ordinary event."""
    parts = event.get(BATCH_KEY)
    return parts if isinstance(parts, tuple) else None


def event_id(event: dict[str, Any]) -> str:
    """An event's id as the session may see it (no spaces, brackets or controls)."""
    return _ID_SAFE.sub("", str(event.get("id") or ""))[:80]


def _batch_text(parts: tuple[dict[str, Any], ...]) -> str:
    n = len(parts)
    head = f"[FROM relay | {n} events that arrived while you were busy, oldest first; ack each id]"
    lines = [f"({i}/{n} id={event_id(ev)}) {event_text(ev)}" for i, ev in enumerate(parts, 1)]
    return FOLD.join([head, *lines])


def event_text(event: dict[str, Any], *, resend: bool = False) -> str:
    """The exact text a session is given for `event` (channel content and typed line alike)."""
    parts = batch_parts(event)
    if parts is not None:
        text = _batch_text(parts)
        return (RESEND_MARK + text) if resend else text
    source = source_name(event)
    body = clean(str(event.get("body") or event.get("id") or ""))
    m = _FRAME.match(body)
    if m is not None and m.group(1) == source:
        frame, rest = m.group(0), body[m.end() :]
    elif source or m is not None:  # a frame naming someone else is the body's, not ours
        frame, rest = f"[FROM {source or 'unknown'}]", body
    else:  # no source and no frame (a bare test or script event): no frame to forge
        frame, rest = "", body
    rest = _INNER_FROM.sub("(\\1", rest).strip()
    if not frame and rest[:1] in ("/", "!", "#"):
        rest = "[event] " + rest  # `/cmd`, `!shell` and `#memory` must not be triggered by data
    text = f"{frame} {rest}".strip()
    return (RESEND_MARK + text) if resend else text


def typed_payload(event: dict[str, Any], *, resend: bool = False, bracketed: bool) -> bytes:
    """The exact bytes written to the PTY for `event`, before Enter (a separate write)."""
    data = event_text(event, resend=resend).encode("utf-8")
    return PASTE_START + data + PASTE_END if bracketed else data


def channel_payload(event: dict[str, Any], *, resend: bool = False) -> tuple[str, dict[str, str]]:
    """(content, meta) for `notifications/claude/channel`: meta holds identifiers only, as
    plain values that cannot break out of the `<channel k="v">` attributes they become."""
    parts = batch_parts(event)
    if parts is not None:  # ids only: the text says which is which
        ids = " ".join(event_id(ev) for ev in parts)
        batch_meta = {"event_ids": ids, "from": "relay", "resend": "true" if resend else "false"}
        return event_text(event), batch_meta
    md = event.get("metadata") or {}
    meta = {
        "event_id": event.get("id"),
        "from": event.get("source"),
        "kind": md.get("kind"),
        "repo": md.get("repo"),
        "number": md.get("number"),
        "resend": "true" if resend else "false",
    }
    safe = {k: _META_SAFE.sub("", str(v))[:200] for k, v in meta.items() if v not in (None, "")}
    return event_text(event), {k: v for k, v in safe.items() if v}

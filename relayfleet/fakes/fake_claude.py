"""A fake `claude`: a real interactive program that behaves like Claude Code where the runner cares.

Run as `python -m relayfleet.fakes.fake_claude [claude's flags]` inside a PTY. It

- parses the real flags (`--mcp-config`, `--dangerously-load-development-channels server:relay`,
  `--session-id` / `--resume`, `--model`, `--remote-control`, `--append-system-prompt-file`, …);
- shows the "WARNING: Loading development channels" dialog and waits for the answer (optionally
  the trust and API-key dialogs too, with the real, safe defaults);
- switches bracketed paste on (`ESC[?2004h`) and shows the idle prompt `❯` between two rules;
- connects to the `--mcp-config` server with a real MCP client (handshake era, bearer header),
  prints every `notifications/claude/channel` as `<channel source="relay" …>content</channel>`
  and calls `ack_event` with the meta's `event_id`;
- echoes typed or pasted lines as turns, and writes every turn to a JSONL transcript.

Transcript (`--transcript` or `FAKE_CLAUDE_TRANSCRIPT`), one JSON object per line, `type` one of
`launch` (argv, session_id, resumed, channels), `turn` (via pty|channel, text, meta), `ack`
(event_id, result), `exit`.

Knobs (flag or env): `--fake-no-channels` / `FAKE_CLAUDE_NO_CHANNELS=1` prints the real
"Channels are not currently available" notice and drops channel events;
`--fake-crash-after N` / `FAKE_CLAUDE_CRASH_AFTER`;
`--fake-slow-start S` / `FAKE_CLAUDE_SLOW_START`;
`FAKE_CLAUDE_TRUST_DIALOG=1`, `FAKE_CLAUDE_APIKEY_DIALOG=1`; `FAKE_CLAUDE_NO_ACK=1`;
`FAKE_CLAUDE_FOLD_NOTICES=1` registers the channel without the startup notice (2.1.331 may fold
notices away: only `--debug-file` then says "Channel notifications registered");
`--fake-turn-sec S` / `FAKE_CLAUDE_TURN_SEC` makes every turn take that long (a busy session);
a channel event whose meta has `event_ids` (a coalesced burst) is acked id by id;
`FAKE_CLAUDE_CALL_API=1` makes each turn one streamed `POST /v1/messages` (transcript `api`).
A turn containing `HANDOFF(<agent>): <message>` calls the `handoff` tool (transcript `tool`).
`FAKE_CLAUDE_UNNUMBERED=1` draws dialogs as 2.1.331 does: under a rule, options without numbers
(`❯ No, exit` / `  Yes, I trust this folder`); `FAKE_CLAUDE_AUTO_MODE_NOTICE=1` shows the
"Auto mode … Press Enter to continue" notice over the first prompt: until Enter dismisses it,
whatever is typed is dropped (transcript `notice`); `FAKE_CLAUDE_UNKNOWN_DIALOG=1` shows a
dialog no rule knows ("Pick a release channel"; transcript `unknown_dialog` with the choice;
also `--fake-unknown-dialog`); `FAKE_CLAUDE_DIALOG_AFTER_TURN=1` shows it after the first turn.
The trust dialog's answer is recorded (`trust`, accepted true/false).
`FAKE_CLAUDE_RAW_INPUT=<file>` appends every byte read from the terminal to that file;
`--fake-input-stamps <file>` appends `{"t", "via", "data"}` for every terminal read and every
channel notification, stamped on arrival (benchmarks/delivery_latency.py).
`--fake-turn-shell CMD` / `FAKE_CLAUDE_TURN_SHELL`: each turn runs `sh -c CMD` in the session's
cwd with the turn's text in `$FAKE_CLAUDE_TURN` (as a model running git and `gh fleet` would);
recorded as `type: shell` (cwd, rc, output).
Sessions live in `$CLAUDE_CONFIG_DIR/fake-sessions/<id>.jsonl` (created by the first turn, as
the real client creates its transcript), so `--resume` of an unknown id fails like the real one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

WIDTH = 80
RULE = "─" * WIDTH
CHANNEL_METHOD = "notifications/claude/channel"
DEV_DIALOG_TITLE = "WARNING: Loading development channels"
DEV_OPTIONS = ["I am using this for local development", "Exit"]
TRUST_OPTIONS = ["No, exit", "Yes, I trust this folder"]
APIKEY_OPTIONS = ["Yes", "No (recommended)"]
UP, DOWN = b"\x1b[A", b"\x1b[B"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"


def loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="claude", add_help=False)
    p.add_argument("--mcp-config", nargs="+", default=[])
    p.add_argument("--strict-mcp-config", action="store_true")
    p.add_argument("--dangerously-load-development-channels", nargs="+", default=[])
    p.add_argument("--channels", nargs="+", default=[])
    p.add_argument("--session-id")
    p.add_argument("-r", "--resume")
    p.add_argument("-c", "--continue", dest="cont", action="store_true")
    p.add_argument("--model")
    p.add_argument("--remote-control", "--rc", nargs="?", const="")
    p.add_argument("-n", "--name")
    p.add_argument("--append-system-prompt-file")
    p.add_argument("--append-system-prompt")
    p.add_argument("--permission-mode")
    p.add_argument("--settings")
    p.add_argument("--debug-file")
    p.add_argument("--transcript", default=os.environ.get("FAKE_CLAUDE_TRANSCRIPT"))
    p.add_argument("--fake-no-channels", action="store_true")
    p.add_argument("--fake-crash-after", type=int)
    p.add_argument("--fake-slow-start", type=float)
    p.add_argument("--fake-turn-sec", type=float)
    p.add_argument("--fake-input-stamps")
    p.add_argument("--fake-unknown-dialog", action="store_true")
    p.add_argument("--fake-turn-shell", default=os.environ.get("FAKE_CLAUDE_TURN_SHELL"))
    return p.parse_known_args(argv)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


class FakeClaude:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.args, self.unknown = parse_args(argv)
        a = self.args
        self.no_channels = a.fake_no_channels or env_flag("FAKE_CLAUDE_NO_CHANNELS")
        crash = a.fake_crash_after or os.environ.get("FAKE_CLAUDE_CRASH_AFTER")
        self.crash_after = int(crash) if crash else None
        slow = a.fake_slow_start or os.environ.get("FAKE_CLAUDE_SLOW_START")
        self.slow_start = float(slow) if slow else 0.0
        self.transcript = Path(a.transcript) if a.transcript else None
        config_dir = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home() / ".fake-claude")
        self.sessions = Path(config_dir) / "fake-sessions"
        self.session_id = a.resume or a.session_id or str(uuid.uuid4())
        self.dev_channels = [e for e in a.dangerously_load_development_channels if e]
        self.channels_on = False
        self.turns = 0
        self.keys: asyncio.Queue[bytes] = asyncio.Queue()
        self.events: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
        self.client: Any = None
        self.prompt_shown = False
        self.notice_pending = False

    # -- output --------------------------------------------------------------------------------

    def out(self, text: str) -> None:
        os.write(1, text.replace("\n", "\r\n").encode())

    def record(self, **entry: Any) -> None:
        entry.setdefault("ts", time.time())
        entry.setdefault("session_id", self.session_id)
        line = json.dumps(entry) + "\n"
        if self.transcript is not None:
            with open(self.transcript, "a") as fh:
                fh.write(line)

    def stamp(self, via: str, data: str) -> None:
        if self.args.fake_input_stamps:
            line = json.dumps({"t": time.time(), "via": via, "data": data}) + "\n"
            with open(self.args.fake_input_stamps, "a") as fh:
                fh.write(line)

    def debug(self, message: str) -> None:
        """One line of `--debug-file`, in the real client's shape (ISO time, level, text)."""
        if not self.args.debug_file:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
        with open(self.args.debug_file, "a") as fh:
            fh.write(f"{stamp} [DEBUG] {message}\n")

    def prompt(self) -> None:
        """The idle prompt box; the cursor is left inside it, after `❯ `."""
        if self.notice_pending:
            self.out(
                "▎ Auto mode is now Claude Code's default permission mode.\n"
                "▎ Auto mode lets Claude handle permission prompts automatically.\n"
                "  Press Enter to continue\n"
            )
        self.out(f"{RULE}\n❯ \n{RULE}\n  ⏵⏵ accept edits on (shift+tab to cycle)\x1b[2A\x1b[3G")
        self.prompt_shown = True

    def show_input(self, buf: bytes) -> None:
        """Redraw the input line: one line that shows the end of a long input, as a scrolling
        field does (the box keeps its two rules whatever the length)."""
        text = buf.decode("utf-8", "replace")
        self.out("\r\x1b[2K❯ " + text[-(WIDTH - 4) :])

    def clear_prompt(self) -> None:
        if self.prompt_shown:
            self.out("\r\x1b[1A\x1b[J")  # up to the top rule, erase the box
            self.prompt_shown = False

    # -- input ---------------------------------------------------------------------------------

    def _on_stdin(self) -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(0)
            self.keys.put_nowait(b"\x04")
            return
        self.stamp("pty", data.decode("utf-8", "replace"))
        raw = os.environ.get("FAKE_CLAUDE_RAW_INPUT")
        if raw:  # the exact bytes the session was given, for tests of what was written
            with open(raw, "ab") as fh:
                fh.write(data)
        self.keys.put_nowait(data)

    async def dialog(self, title: str, body: list[str], options: list[str], default: int) -> int:
        """Full-screen choice; arrows move, Enter confirms, digits choose directly."""
        selected = default
        unnumbered = env_flag("FAKE_CLAUDE_UNNUMBERED")
        while True:
            if unnumbered:  # 2.1.331: a rule on top, one-space margin, no option numbers
                lines = [RULE, f" {title}", "", *(f" {b}" for b in body), ""]
                for i, opt in enumerate(options):
                    lines.append(f" {'❯' if i == selected else ' '} {opt}")
                lines += ["", " Enter to confirm · Esc to cancel"]
            else:
                lines = [title, "", *body, ""]
                for i, opt in enumerate(options):
                    lines.append(f"{'❯' if i == selected else ' '} {i + 1}. {opt}")
                lines += ["", "Enter to confirm · Esc to cancel"]
            self.out("\x1b[2J\x1b[H" + "\n".join(lines))
            data = await self.keys.get()
            while data:
                if data.startswith(UP):
                    selected, data = max(0, selected - 1), data[len(UP) :]
                elif data.startswith(DOWN):
                    selected, data = min(len(options) - 1, selected + 1), data[len(DOWN) :]
                elif data[:1].isdigit() and 1 <= int(data[:1]) <= len(options):
                    return int(data[:1]) - 1
                elif data.startswith(b"\r"):
                    return selected
                elif data[:1] in (b"\x1b", b"\x03"):
                    return len(options) - 1  # Esc / Ctrl-C: the last option (Exit / No)
                else:
                    data = data[1:]

    async def unknown_dialog(self) -> None:
        options = ["Stable", "Latest"]
        choice = await self.dialog(
            "Pick a release channel", ["Which updates should this install follow?"], options, 0
        )
        self.record(type="unknown_dialog", choice=options[choice])

    # -- MCP -----------------------------------------------------------------------------------

    def _server(self) -> tuple[str, str, dict[str, str]] | None:
        for item in self.args.mcp_config:
            doc = json.loads(Path(item).read_text() if not item.lstrip().startswith("{") else item)
            for name, cfg in doc.get("mcpServers", {}).items():
                return name, cfg["url"], dict(cfg.get("headers") or {})
        return None

    async def connect_mcp(self) -> str | None:
        server = self._server()
        if server is None:
            return None
        name, url, headers = server
        from fastmcp import Client
        from fastmcp.client.transports import StreamableHttpTransport
        from mcp.client.extension import ClientExtension, NotificationBinding
        from pydantic import BaseModel

        class ChannelParams(BaseModel):
            content: str
            meta: dict[str, str] = {}

        async def on_channel(params: ChannelParams) -> None:
            self.stamp("channel", params.content)
            await self.events.put((params.content, dict(params.meta)))

        class ChannelExt(ClientExtension):
            identifier = "dev.relayfleet/fake-claude"

            def notifications(self) -> list[NotificationBinding[Any]]:
                return [
                    NotificationBinding(
                        method=CHANNEL_METHOD, params_type=ChannelParams, handler=on_channel
                    )
                ]

        transport = StreamableHttpTransport(url, headers=headers)
        self.client = Client(transport, mode="legacy", extensions=[ChannelExt()])
        await self.client.__aenter__()
        caps = self.client.initialize_result.capabilities
        declared = bool((caps.experimental or {}).get("claude/channel") is not None)
        tools = [t.name for t in await self.client.list_tools()]
        self.record(type="mcp", server=name, tools=tools, channel_capability=declared)
        return name if declared else None

    async def channel_worker(self, source: str) -> None:
        while True:
            content, meta = await self.events.get()
            if not self.channels_on:
                continue  # the real client drops events from a channel it did not register
            attrs = " ".join(f'{k}="{v}"' for k, v in meta.items())
            self.clear_prompt()
            self.out(f"← {source}: {content.splitlines()[0] if content else ''}\n")
            self.out(f'<channel source="{source}" {attrs}>\n{content}\n</channel>\n')
            await self.turn("channel", content, meta)
            ids = meta.get("event_ids", "").split() or [meta.get("event_id", "")]
            for event_id in ids if not env_flag("FAKE_CLAUDE_NO_ACK") else []:
                if not event_id:
                    continue
                result = await self.client.call_tool("ack_event", {"event_id": event_id})
                text = " ".join(getattr(c, "text", "") for c in result.content)
                self.record(type="ack", event_id=event_id, result=text)
                self.out(f"● ack_event({event_id}) → {text}\n")
            self.prompt()

    # -- turns ---------------------------------------------------------------------------------

    async def turn(self, via: str, text: str, meta: dict[str, str] | None = None) -> None:
        self.turns += 1
        self.sessions.mkdir(parents=True, exist_ok=True)
        with open(self.sessions / f"{self.session_id}.jsonl", "a") as fh:
            fh.write(json.dumps({"via": via, "text": text}) + "\n")
        self.record(type="turn", via=via, text=text, meta=meta or {}, n=self.turns)
        self.clear_prompt()
        if via == "pty":
            self.out(f"> {text}\n")
        self.out("✻ Thinking… (esc to interrupt)\n")
        turn_sec = self.args.fake_turn_sec or os.environ.get("FAKE_CLAUDE_TURN_SEC")
        await asyncio.sleep(float(turn_sec or 0.01))
        if env_flag("FAKE_CLAUDE_CALL_API"):
            await self.call_api(text)
        await asyncio.sleep(0.04)
        self.out("\x1b[1A\r\x1b[2K")  # the spinner line goes away when the turn is done
        self.out(f"● Received: {text}\n")
        await self.maybe_hand_off(text)
        await self.maybe_run_shell(text)
        if self.crash_after is not None and self.turns >= self.crash_after:
            self.record(type="exit", code=70, reason="crash-after")
            self.out("fake claude: crashing as asked\n")
            os._exit(70)

    async def maybe_run_shell(self, text: str) -> None:
        """`--fake-turn-shell CMD`: the turn's work is `sh -c CMD` in the session's cwd."""
        if not self.args.fake_turn_shell:
            return
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            self.args.fake_turn_shell,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "FAKE_CLAUDE_TURN": text},
        )
        output, _ = await proc.communicate()
        rc = await proc.wait()
        self.record(type="shell", cwd=os.getcwd(), rc=rc, output=output.decode(errors="replace"))
        self.out(f"● Bash → exit {rc}\n")

    async def maybe_hand_off(self, text: str) -> None:
        """A turn that says `HANDOFF(<agent>): <message>` calls the runner's `handoff` tool, as a
        model passing work on would (recorded as `type: tool`)."""
        import re

        m = re.search(r"HANDOFF\(([A-Za-z0-9_.-]+)\):\s*(.+)", text, re.S)
        if m is None or self.client is None:
            return
        agent, message = m.group(1), m.group(2).strip()
        result = await self.client.call_tool("handoff", {"agent": agent, "message": message})
        reply = " ".join(getattr(c, "text", "") for c in result.content)
        self.record(type="tool", tool="handoff", agent=agent, result=reply)
        self.out(f"● handoff({agent}) → {reply}\n")

    async def call_api(self, text: str) -> None:
        """`FAKE_CLAUDE_CALL_API=1`: one streamed Messages call per turn, as the real client makes
        (to `$ANTHROPIC_BASE_URL` with `$ANTHROPIC_API_KEY`); recorded as `type: api`."""
        import httpx

        base = os.environ.get("ANTHROPIC_BASE_URL", "").rstrip("/")
        if not loopback_url(base):
            # A test double never spends (or carries) a real key to a real API: only loopback.
            self.record(type="api", status=0, reply="<refused: ANTHROPIC_BASE_URL not loopback>")
            self.out("● fake claude: refusing to call a non-loopback API\n")
            return
        headers = {
            "x-api-key": os.environ.get("ANTHROPIC_API_KEY", ""),
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        body = {
            "model": self.args.model or "sonnet",
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        }
        reply, status = [], 0
        try:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream(
                    "POST", f"{base}/v1/messages?beta=true", headers=headers, json=body
                ) as resp,
            ):
                status = resp.status_code
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and "text_delta" in line:
                        reply.append(json.loads(line[5:])["delta"].get("text", ""))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            reply.append(f"<api error {type(exc).__name__}>")
        self.record(type="api", status=status, reply="".join(reply))
        self.out(f"● {''.join(reply)}\n")

    async def read_prompt(self) -> None:
        buf = bytearray()
        pasting = False
        pending = b""
        while True:
            data = pending + await self.keys.get()
            pending = b""
            i = 0
            shown = bytes(buf)
            while i < len(data):
                if data.startswith(PASTE_START, i):
                    pasting, i = True, i + len(PASTE_START)
                    continue
                if data.startswith(PASTE_END, i):
                    pasting, i = False, i + len(PASTE_END)
                    continue
                if data[i] == 0x1B and len(data) - i < len(PASTE_START):
                    pending = data[i:]  # a marker split across reads
                    break
                ch = data[i : i + 1]
                i += 1
                if self.notice_pending:
                    # The notice takes the keys: text is dropped, the first Enter dismisses it.
                    if ch == b"\r" and not pasting:
                        self.notice_pending = False
                        self.record(type="notice", dismissed=True, dropped=buf.decode())
                        buf.clear()
                        shown = b""
                        self.out("\x1b[2J\x1b[H✻ Welcome to Claude Code (fake)\n")
                        self.prompt()
                    continue
                if pasting:
                    buf += ch
                elif ch == b"\r":
                    text = buf.decode("utf-8", "replace")
                    buf.clear()
                    shown = b""
                    if text.strip():
                        await self.turn("pty", text)
                        if self.turns == 1 and env_flag("FAKE_CLAUDE_DIALOG_AFTER_TURN"):
                            await self.unknown_dialog()
                            self.out("\x1b[2J\x1b[H")
                        self.prompt()
                    else:
                        self.show_input(b"")
                elif ch == b"\x04" and not buf:
                    return
                elif ch in (b"\x03", b"\x15"):
                    buf.clear()
                elif ch == b"\x7f":
                    del buf[-1:]
                elif ch == b"\x1b":
                    i = len(data)  # drop other escape sequences (arrows, …)
                else:
                    buf += ch
            if bytes(buf) != shown and not self.notice_pending:
                self.show_input(bytes(buf))

    # -- main ----------------------------------------------------------------------------------

    async def run(self) -> int:
        import termios
        import tty

        loop = asyncio.get_running_loop()
        saved = termios.tcgetattr(0) if os.isatty(0) else None
        if saved is not None:
            tty.setraw(0)
        loop.add_reader(0, self._on_stdin)
        try:
            return await self._run()
        finally:
            self.out("\x1b[?2004l")
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)

    async def _run(self) -> int:
        a = self.args
        if a.resume and not (self.sessions / f"{a.resume}.jsonl").exists():
            self.out(f"No conversation found with session ID: {a.resume}\n")
            return 1
        if a.session_id and (self.sessions / f"{a.session_id}.jsonl").exists():
            self.out(f"Error: Session ID {a.session_id} is already in use.\n")
            return 1
        self.record(
            type="launch",
            argv=self.argv,
            resumed=bool(a.resume),
            model=a.model,
            remote_control=a.remote_control,
            dev_channels=self.dev_channels,
            pid=os.getpid(),
        )
        if self.slow_start:
            self.out("Starting…\n")
            await asyncio.sleep(self.slow_start)
        if env_flag("FAKE_CLAUDE_TRUST_DIALOG"):
            choice = await self.dialog(
                f"Accessing workspace: {os.getcwd()}",
                ["Quick safety check: Is this a project you created or one you trust?"],
                TRUST_OPTIONS,
                0,
            )
            self.record(type="trust", accepted=TRUST_OPTIONS[choice] != "No, exit")
            if TRUST_OPTIONS[choice] == "No, exit":
                return 1
        if env_flag("FAKE_CLAUDE_APIKEY_DIALOG"):
            choice = await self.dialog(
                "Detected a custom API key in your environment",
                ["Do you want to use this API key?"],
                APIKEY_OPTIONS,
                1,
            )
            self.record(type="apikey", approved=choice == 0)
        if a.fake_unknown_dialog or env_flag("FAKE_CLAUDE_UNKNOWN_DIALOG"):
            await self.unknown_dialog()
        if self.dev_channels:
            body = [
                "--dangerously-load-development-channels is for local channel development only.",
                f"Channels: {' '.join(self.dev_channels)}",
            ]
            if DEV_OPTIONS[await self.dialog(DEV_DIALOG_TITLE, body, DEV_OPTIONS, 0)] == "Exit":
                self.record(type="exit", code=1, reason="dev-channels-declined")
                return 1
        self.out("\x1b[2J\x1b[H✻ Welcome to Claude Code (fake)\n")
        self.debug(f"Session {self.session_id} starting")
        source = await self.connect_mcp()
        if source:
            self.debug(f'MCP server "{source}": Successfully connected to http server')
        wanted = {e.removeprefix("server:") for e in self.dev_channels}
        if self.dev_channels and self.no_channels:
            self.debug(
                f'MCP server "{source}": Channel notifications skipped: '
                "channels feature is not currently available"  # as 2.1.331 writes it
            )
            joined = " ".join(self.dev_channels)
            self.out(f"▎ --dangerously-load-development-channels ignored ({joined})\n")
            self.out("▎ Channels are not currently available\n")
        elif source and source in wanted:
            self.channels_on = True
            self.debug(f'MCP server "{source}": Channel notifications registered')
            if not env_flag("FAKE_CLAUDE_FOLD_NOTICES"):
                self.out(
                    f"Channels (experimental) messages from server:{source} inject directly in "
                    "this session · use with care\n"
                )
        self.record(type="ready", channels=self.channels_on)
        self.notice_pending = env_flag("FAKE_CLAUDE_AUTO_MODE_NOTICE")
        self.out("\x1b[?2004h")
        self.prompt()
        worker = None
        if source:
            worker = asyncio.create_task(self.channel_worker(source))
        try:
            await self.read_prompt()
        finally:
            if worker is not None:
                worker.cancel()
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await self.client.__aexit__(None, None, None)
        self.record(type="exit", code=0, reason="eof")
        return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(FakeClaude(list(sys.argv[1:] if argv is None else argv)).run())


if __name__ == "__main__":
    raise SystemExit(main())

"""The `claude` engine end to end against the fake `claude`: channel path and PTY fallback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from sessionkit import make_spec, wait_until

from relayfleet.runner.channel import ChannelServer
from relayfleet.runner.engine import DELIVERY_CHANNEL, DELIVERY_PTY
from relayfleet.runner.engine_claude import (
    FLAG_FETCH_KILLERS,
    ClaudeEngine,
    SessionBlocked,
    channel_event,
)

FAKE = (sys.executable, "-m", "relayfleet.fakes.fake_claude")
EVENT = {
    "id": "evt_1",
    "ts": "2026-11-24T10:00:00Z",
    "source": "github",
    "body": "[FROM github | issues acme/WMS#12 updated] Fix the scanner crash",
    "metadata": {"repo": "acme/WMS", "kind": "issues", "number": 12},
}


def transcript(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def turns(path: Path) -> list[dict[str, Any]]:
    return [e for e in transcript(path) if e["type"] == "turn"]


async def run_session(
    tmp: Path, *, env: dict[str, str], resume: bool = False, body: Any = None
) -> tuple[ClaudeEngine, list[str]]:
    """Start the runner's channel + engine, deliver EVENT, run `body`, stop everything."""
    acked: list[str] = []

    async def ack_event(event_id: str) -> str:
        """Acknowledge an event."""
        acked.append(event_id)
        return f"acknowledged {event_id}"

    srv = ChannelServer()
    srv.tool(ack_event)
    url, token = await srv.start()
    spec = make_spec(
        tmp, command=FAKE, engine="claude", mcp_url=url, mcp_token=token, env=env, resume=resume
    )
    engine = ClaudeEngine(spec, srv)
    engine.channel_timeout = 10
    engine.busy_timeout = 20
    try:
        await engine.start()
        if body is not None:
            await body(engine, acked)
    finally:
        await engine.stop(grace=2)
        await srv.stop()
    return engine, acked


def test_channel_path_event_arrives_as_notification_and_is_acked(tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "DO_NOT_TRACK": "1", "DISABLE_TELEMETRY": "1"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        assert engine.delivery == DELIVERY_CHANNEL
        await engine.deliver(EVENT)
        await wait_until(lambda: acked)

    engine, acked = asyncio.run(run_session(tmp_path, env=env, body=body))
    assert acked == ["evt_1"]
    (turn,) = turns(log)
    assert turn["via"] == "channel"
    assert turn["text"] == EVENT["body"]
    assert turn["meta"] == {
        "event_id": "evt_1",
        "from": "github",
        "kind": "issues",
        "repo": "acme/WMS",
        "number": "12",
        "resend": "false",
    }
    launch = transcript(log)[0]
    argv = launch["argv"]
    assert argv[argv.index("--dangerously-load-development-channels") + 1] == "server:relay"
    assert argv[argv.index("--session-id") + 1] == engine.spec.session_id
    assert "--strict-mcp-config" in argv
    assert argv[argv.index("--append-system-prompt-file") + 1].endswith("CLAUDE.md")
    # The token is in the 0600 config file, never on the command line.
    assert engine.spec.mcp_token not in " ".join(argv)
    env_seen = engine.env()
    assert env_seen["MCP_PROTOCOL_NEGOTIATION"] == "legacy"
    assert env_seen["DISABLE_AUTOUPDATER"] == "1"
    assert not any(k in env_seen for k in FLAG_FETCH_KILLERS)
    assert env_seen["CLAUDE_CONFIG_DIR"] == str(engine.spec.state_dir / "claude-config")


def test_pty_fallback_when_channels_are_unavailable(tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "FAKE_CLAUDE_NO_CHANNELS": "1"}
    second = {**EVENT, "id": "evt_2", "body": "/etc/passwd is\nworth a look"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        assert engine.delivery == DELIVERY_PTY
        assert engine.notice == "Channels are not currently available"
        assert engine.pty is not None and engine.pty.bracketed_paste
        await engine.deliver(EVENT)
        await engine.deliver(second, resend=True)
        await wait_until(lambda: len(turns(log)) == 2)

    engine, acked = asyncio.run(run_session(tmp_path, env=env, body=body))
    assert acked == []  # typed turns carry no event id; the agent acks via the tool itself
    assert [(t["via"], t["text"]) for t in turns(log)] == [
        ("pty", EVENT["body"]),
        ("pty", "[re-send] [FROM github] /etc/passwd is ⏎ worth a look"),
    ]
    assert engine.status()["delivery"] == DELIVERY_PTY


@pytest.mark.parametrize("unnumbered", [False, True])
def test_dialogs_with_safe_defaults_are_answered_by_moving_the_selection(
    tmp_path: Path, unnumbered: bool
) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "FAKE_CLAUDE_APIKEY_DIALOG": "1"}
    if unnumbered:
        env["FAKE_CLAUDE_UNNUMBERED"] = "1"  # as 2.1.331 draws them: "❯ No (recommended)"
    engine, _ = asyncio.run(run_session(tmp_path, env=env))
    kinds = [e["type"] for e in transcript(log)]
    assert "ready" in kinds
    assert {"type": "apikey", "approved": True}.items() <= next(
        e for e in transcript(log) if e["type"] == "apikey"
    ).items()
    assert engine.delivery == DELIVERY_CHANNEL


@pytest.mark.parametrize("unnumbered", [False, True])
def test_the_trust_dialog_is_never_accepted_and_names_both_fixes(
    tmp_path: Path, unnumbered: bool
) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "FAKE_CLAUDE_TRUST_DIALOG": "1"}
    if unnumbered:
        env["FAKE_CLAUDE_UNNUMBERED"] = "1"
    with pytest.raises(SessionBlocked) as info:
        asyncio.run(run_session(tmp_path, env=env))
    message = str(info.value)
    assert message.startswith("blocked: ")
    assert "gh fleet attach coder" in message  # trust it once by hand
    assert "isolate_config = true under [claude]" in message  # or let the runner own the config dir
    # The session sat at the dialog (it was up, never answered): no "trust" answer was recorded.
    assert [e for e in transcript(log) if e["type"] == "trust"] == []
    assert "ready" not in [e["type"] for e in transcript(log)]


def test_an_unknown_dialog_blocks_until_a_human_answers_it(tmp_path: Path) -> None:
    """No rule, no blind answer: start() reports the dialog's first line, the session stays up,
    and once a human answers (here: Enter, as through `gh fleet attach`) the session is ready."""
    log = tmp_path / "transcript.jsonl"
    env = {
        "FAKE_CLAUDE_TRANSCRIPT": str(log),
        "FAKE_CLAUDE_UNKNOWN_DIALOG": "1",
        "FAKE_CLAUDE_UNNUMBERED": "1",
    }

    async def main() -> None:
        srv = ChannelServer()
        url, token = await srv.start()
        spec = make_spec(tmp_path, command=FAKE, engine="claude", mcp_url=url, mcp_token=token)
        spec.env.update(env)
        engine = ClaudeEngine(spec, srv)
        engine.channel_timeout = 10
        try:
            with pytest.raises(SessionBlocked) as info:
                await engine.start()
            assert info.value.title == "Pick a release channel"
            assert str(info.value) == (
                "blocked: Pick a release channel (answer it: gh fleet attach coder)"
            )
            assert engine.status()["blocked"] == "Pick a release channel"
            assert engine.pty is not None and engine.pty.alive()
            await asyncio.sleep(1.0)  # the runner waits; it never answers on its own
            assert not [e for e in transcript(log) if e["type"] == "unknown_dialog"]
            engine.pty.write(b"\r")  # the human's answer
            assert await asyncio.wait_for(engine.until_unblocked(), 20)
            assert engine.status()["blocked"] is None
        finally:
            await engine.stop(grace=2)
            await srv.stop()

    asyncio.run(main())
    assert {"type": "unknown_dialog", "choice": "Stable"}.items() <= next(
        e for e in transcript(log) if e["type"] == "unknown_dialog"
    ).items()


def test_the_first_event_after_the_auto_mode_notice_arrives_intact(tmp_path: Path) -> None:
    """The notice eats the first Enter and drops what was typed before it: the runner dismisses
    it first and types only into the idle prompt, so the first `tell` arrives whole."""
    log = tmp_path / "transcript.jsonl"
    env = {
        "FAKE_CLAUDE_TRANSCRIPT": str(log),
        "FAKE_CLAUDE_NO_CHANNELS": "1",
        "FAKE_CLAUDE_AUTO_MODE_NOTICE": "1",
    }
    told = {"id": "evt_t", "source": "operator", "body": "[FROM operator] first words count"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        await engine.deliver(told)  # returns once the text showed in the box and was submitted
        await wait_until(lambda: turns(log))

    asyncio.run(run_session(tmp_path, env=env, body=body))
    (notice,) = [e for e in transcript(log) if e["type"] == "notice"]
    assert notice["dropped"] == ""  # nothing was typed into the notice
    assert [t["text"] for t in turns(log)] == ["[FROM operator] first words count"]


def test_restart_resumes_the_same_session_and_recovers_an_empty_one(tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log)}

    async def one_turn(engine: ClaudeEngine, acked: list[str]) -> None:
        await engine.deliver(EVENT)
        await wait_until(lambda: acked)

    # Resuming a conversation that never had a turn falls back to --session-id.
    asyncio.run(run_session(tmp_path, env=env, resume=True, body=one_turn))
    asyncio.run(run_session(tmp_path, env=env, resume=True))
    launches = [e for e in transcript(log) if e["type"] == "launch"]
    assert [e["resumed"] for e in launches] == [False, True]
    assert len({e["session_id"] for e in launches}) == 1
    argv = launches[-1]["argv"]
    assert argv[argv.index("--resume") + 1] == launches[0]["session_id"]


def test_session_that_exits_during_startup_is_an_error(tmp_path: Path) -> None:
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(tmp_path / "t.jsonl")}

    async def main() -> None:
        srv = ChannelServer()
        url, token = await srv.start()
        spec = make_spec(
            tmp_path,
            command=(sys.executable, "-c", "print('boom'); raise SystemExit(4)"),
            engine="claude",
            mcp_url=url,
            mcp_token=token,
            env=env,
        )
        try:
            await ClaudeEngine(spec, srv).start()
        finally:
            await srv.stop()

    with pytest.raises(Exception, match="exited with status 4"):
        asyncio.run(main())


def test_channel_meta_holds_identifier_keys_and_string_values() -> None:
    content, meta = channel_event({"id": "e", "source": "ops", "body": "hi"}, resend=True)
    assert content == "[FROM ops] hi"
    assert meta == {"event_id": "e", "from": "ops", "resend": "true"}


def test_the_debug_file_confirms_the_channel_and_is_followed_after_start(tmp_path: Path) -> None:
    """No startup notice on screen (folded away): `--debug-file` says the channel registered.
    A later refusal in the debug file (a reconnect that did not re-register) switches delivery to
    typing; a re-registration switches it back."""
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "FAKE_CLAUDE_FOLD_NOTICES": "1"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        assert engine.delivery == DELIVERY_CHANNEL
        assert engine.status()["channel_confirmed_by"] == "debug-file"
        assert not engine.screen.channels_registered()
        debug = engine.spec.state_dir / "claude-debug.log"
        assert "Channel notifications registered" in debug.read_text()

        with open(debug, "a") as fh:
            fh.write(
                '2026-11-24T10:00:00.000Z [DEBUG] MCP server "relay": Channel notifications '
                "skipped: Channels are not currently available\n"
            )
        await engine.deliver({**EVENT, "id": "evt_2", "body": "typed after the refusal"})
        await wait_until(lambda: len(turns(log)) == 1)
        assert engine.delivery == DELIVERY_PTY
        assert "not currently available" in engine.status()["channel_notice"]

        with open(debug, "a") as fh:
            fh.write(
                '2026-11-24T10:00:01.000Z [DEBUG] MCP server "relay": Channel notifications '
                "re-registered after reconnect\n"
            )
        await engine.deliver(EVENT)
        await wait_until(lambda: acked)
        assert engine.delivery == DELIVERY_CHANNEL

    engine, _ = asyncio.run(run_session(tmp_path, env=env, body=body))
    argv = transcript(log)[0]["argv"]
    assert argv[argv.index("--debug-file") + 1] == str(engine.spec.state_dir / "claude-debug.log")
    assert [t["via"] for t in turns(log)] == ["pty", "channel"]


def test_left_over_input_is_cleared_before_an_event_is_typed(tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    env = {"FAKE_CLAUDE_TRANSCRIPT": str(log), "FAKE_CLAUDE_NO_CHANNELS": "1"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        assert engine.pty is not None
        engine.pty.write(b"half a thought")  # what a human left in the box on detaching
        await wait_until(lambda: engine.screen.prompt_line() == "half a thought")
        await engine.deliver(EVENT)
        await wait_until(lambda: turns(log))

    asyncio.run(run_session(tmp_path, env=env, body=body))
    assert [t["text"] for t in turns(log)] == [EVENT["body"]]


def test_a_dialog_during_the_session_blocks_typing_until_answered(tmp_path: Path) -> None:
    """Nothing is typed into a dialog: the delivery fails as blocked (nothing sent, so the
    next attempt is not a re-send), and once a human answers it the event goes in intact."""
    log = tmp_path / "transcript.jsonl"
    env = {
        "FAKE_CLAUDE_TRANSCRIPT": str(log),
        "FAKE_CLAUDE_NO_CHANNELS": "1",
        "FAKE_CLAUDE_DIALOG_AFTER_TURN": "1",
        "FAKE_CLAUDE_UNNUMBERED": "1",
    }
    second = {"id": "evt_2", "source": "operator", "body": "[FROM operator] second"}

    async def body(engine: ClaudeEngine, acked: list[str]) -> None:
        assert engine.pty is not None
        await engine.deliver(EVENT)
        await wait_until(lambda: engine.screen.dialog() == "unknown")
        with pytest.raises(SessionBlocked) as info:
            await engine.deliver(second)
        assert info.value.nothing_sent and info.value.title == "Pick a release channel"
        assert engine.status()["blocked"] == "Pick a release channel"
        engine.pty.write(b"\r")  # the human answers
        await wait_until(lambda: engine.screen.dialog() is None)
        await engine.deliver(second)
        await wait_until(lambda: len(turns(log)) == 2)

    asyncio.run(run_session(tmp_path, env=env, body=body))
    assert [t["text"] for t in turns(log)] == [EVENT["body"], "[FROM operator] second"]
    assert {"type": "unknown_dialog", "choice": "Stable"}.items() <= next(
        e for e in transcript(log) if e["type"] == "unknown_dialog"
    ).items()

"""The screen reader: dialogs by text and selection marker, numbered or not, at any size.

The `real-*.bin` fixtures are raw PTY output recorded from the real Claude Code 2.1.331
(research/real-claude-offline.md): its trust and API-key dialogs draw their options without
numbers, and a finished turn echoes the prompt as `❯ text` above the input box.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relayfleet.runner.screen import Screen

FIXTURES = Path(__file__).parent / "fixtures"
SIZES = [(24, 80), (30, 100), (50, 200)]


def fed(name: str, rows: int, cols: int) -> Screen:
    screen = Screen(rows, cols)
    screen.feed((FIXTURES / name).read_bytes())
    return screen


def drawn(lines: list[str], rows: int, cols: int) -> Screen:
    screen = Screen(rows, cols)
    screen.feed(("\x1b[2J\x1b[H" + "\r\n".join(lines)).encode())
    return screen


def test_the_real_trust_dialog_is_recognised_without_option_numbers() -> None:
    screen = fed("real-trust-80x24.bin", 24, 80)
    found = screen.find_dialog()
    assert found is not None and found.name == "trust"
    assert found.title == "Accessing workspace:"
    assert [(o.text, o.selected) for o in found.options] == [
        ("No, exit", True),
        ("Yes, I trust this folder", False),
    ]
    assert not screen.idle_prompt()


def test_the_real_api_key_dialog_is_recognised_with_its_safe_default_selected() -> None:
    screen = fed("real-apikey-40x120.bin", 40, 120)
    found = screen.find_dialog()
    assert found is not None and found.name == "api_key"
    assert [(o.number, o.text, o.selected) for o in found.options] == [
        (1, "Yes", False),
        (2, "No (recommended)", True),
    ]


def test_a_finished_real_turn_is_an_idle_prompt_not_a_dialog() -> None:
    # The conversation shows "❯ Say hello please" above the box: an echo, not a menu.
    screen = fed("real-turn-80x24.bin", 24, 80)
    assert screen.find_dialog() is None
    assert screen.notice() is None
    assert screen.idle_prompt()
    assert screen.prompt_line() == ""


DIALOGS = {
    "trust": (
        "Accessing workspace:",
        ["Quick safety check: Is this a project you created or one you trust?"],
        ["No, exit", "Yes, I trust this folder"],
    ),
    "api_key": (
        "Detected a custom API key in your environment",
        ["Do you want to use this API key?"],
        ["Yes", "No (recommended)"],
    ),
    "dev_channels": (
        "WARNING: Loading development channels",
        ["--dangerously-load-development-channels is for local channel development only."],
        ["I am using this for local development", "Exit"],
    ),
    "bypass": (
        "WARNING: Claude Code running in Bypass Permissions mode",
        ["In Bypass Permissions mode, Claude Code will not ask for your approval."],
        ["No, exit", "Yes, I accept"],
    ),
    "theme": (
        "Let's get started.",
        ["Choose the text style that looks best with your terminal"],
        ["Dark mode", "Light mode", "Dark mode (colorblind-friendly)"],
    ),
    "unknown": (
        "Pick a release channel",
        ["Which updates should this install follow?"],
        ["Stable", "Latest"],
    ),
}


def render(
    title: str, body: list[str], options: list[str], selected: int, numbered: bool
) -> list[str]:
    lines = ["─" * 40, f" {title}", "", *(f" {b}" for b in body), ""]
    for i, opt in enumerate(options):
        mark = "❯" if i == selected else " "
        lines.append(f" {mark} {i + 1}. {opt}" if numbered else f" {mark} {opt}")
    return [*lines, "", " Enter to confirm · Esc to cancel"]


@pytest.mark.parametrize("rows,cols", SIZES)
@pytest.mark.parametrize("numbered", [True, False])
@pytest.mark.parametrize("name", sorted(DIALOGS))
def test_every_dialog_by_text_numbered_or_not_at_every_size(
    name: str, numbered: bool, rows: int, cols: int
) -> None:
    title, body, options = DIALOGS[name]
    screen = drawn(render(title, body, options, 1, numbered), rows, cols)
    found = screen.find_dialog()
    assert found is not None
    assert found.name == name
    assert found.title == title
    assert [o.text for o in found.options] == options
    assert [o.selected for o in found.options] == [i == 1 for i in range(len(options))]
    assert [o.number for o in found.options] == list(range(1, len(options) + 1))
    assert not screen.idle_prompt()


PROMPT = ["─" * 40, "❯ ", "─" * 40, "  ⏵⏵ auto mode on (shift+tab to cycle)"]


@pytest.mark.parametrize("rows,cols", SIZES)
def test_an_enter_to_continue_notice_is_not_an_idle_prompt(rows: int, cols: int) -> None:
    notice = [
        "▎ Auto mode is now Claude Code's default permission mode.",
        "▎ Auto mode lets Claude handle permission prompts automatically.",
        "  Press Enter to continue",
    ]
    screen = drawn([*notice, *PROMPT], rows, cols)
    assert screen.notice() == "auto_mode"
    assert not screen.idle_prompt()
    other = drawn(["Something changed.", "Press Enter to continue", *PROMPT], rows, cols)
    assert other.notice() == "unknown"
    assert other.notice_title() == "Something changed."
    assert drawn(PROMPT, rows, cols).idle_prompt()


def test_the_input_box_reads_a_wrapped_input_as_one_line() -> None:
    screen = drawn(["─" * 40, "❯ [FROM operator] a long", "  line that wraps", "─" * 40], 24, 80)
    assert screen.prompt_line() == "[FROM operator] a long line that wraps"
    assert screen.find_dialog() is None


def test_enter_to_continue_quoted_in_the_conversation_is_not_a_notice() -> None:
    reply = ["❯ how do I resume?", "", "● Press Enter to continue", "", "✻ Worked for 1s"]
    screen = drawn([*reply, "", *PROMPT], 24, 80)
    assert screen.notice() is None
    assert screen.idle_prompt()

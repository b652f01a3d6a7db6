"""Content hygiene: GitHub text as a person reading the page would see it (pure: no I/O).

Whoever opens an issue writes its text, and a page can carry words its readers never see: an
HTML comment, zero-width and bidirectional control characters (including Unicode "tag" letters,
which smuggle whole ASCII sentences invisibly), an `<img alt>` or a link title that only shows
on hover, the alt text of a markdown image. An agent reading the raw text would read those
words too. `clean` removes them and says how many of each it removed, so the event can carry
the counts (`metadata.hygiene`) and the agent and the operator see that something was hidden.

`clean_field` is for the fields routes match on (title, labels): it also folds the text to
Unicode NFKC first, so a fullwidth or ligature spelling cannot slip past `title_contains` or a
label gate, and so a fullwidth `＜!--` cannot turn into a comment after the check.

Both are idempotent (cleaning clean text changes nothing): each pass runs to a fixed point,
because removing one thing can bring two halves of another together (`<!<!-- -->--`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

# Count names, as they appear in `metadata.hygiene`.
HTML_COMMENTS = "html_comments"
INVISIBLE = "invisible"
HIDDEN_ATTRIBUTES = "hidden_attributes"
IMAGE_ALT = "image_alt"
LINK_TITLES = "link_titles"


def is_invisible(ch: str) -> bool:
    """Format characters (zero-width, bidi controls, soft hyphen, BOM, tag letters), variation
    selectors, fillers and control characters other than tab and line breaks: nothing a reader
    sees."""
    o = ord(ch)
    if ch in "\t\n\r":
        return False
    if 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF:  # variation selectors
        return True
    if o in (0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800):  # Hangul fillers, braille blank
        return True
    return unicodedata.category(ch) in ("Cf", "Cc")


# `&#8203;`, `&#x200B;`, `&zwj;`…: an entity GitHub renders as an invisible character.
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


# Attributes that only show on hover or to screen readers, inside any HTML tag.
_TAG_RE = re.compile(r"""<[A-Za-z][A-Za-z0-9-]*+(?:"[^"]*+"|'[^']*+'|[^<>"'])*+>""")
_HIDDEN_ATTR_RE = re.compile(
    r"""\s(?:alt|title|aria-label|aria-description|data-[A-Za-z0-9-]*)\s*=\s*"""
    r"""(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+)""",
    re.IGNORECASE,
)

# Markdown: `![alt](url)` / `![alt][ref]`, and a link's (or image's) `"title"` / `'title'` /
# `(title)` after its URL, inline or in a reference definition.
_IMAGE_ALT_RE = re.compile(r"!\[([^\[\]]++)\](?=[(\[])")
# Possessive quantifiers (`*+`, `++`) keep these linear: the text is an attacker's, and a plain
# `\s*…\s+` pair backtracks quadratically over a long run of spaces.
_LINK_TITLE_RE = re.compile(
    r"""(\]\(\s*+<?[^\s()<>]*+>?)\s++(?:"[^"\n]*+"|'[^'\n]*+'|\([^()\n]*+\))\s*+\)"""
)
_REF_TITLE_RE = re.compile(
    r"""^([ ]{0,3}\[[^\]\n]++\]:[ \t]*+<?\S++)[ \t]++"""
    r"""(?:"[^"\n]*+"|'[^'\n]*+'|\([^()\n]*+\))[ \t]*+$""",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Cleaned:
    text: str
    counts: dict[str, int] = field(default_factory=dict)  # only what was found (count > 0)

    @property
    def hidden(self) -> bool:
        return bool(self.counts)


def _entity(m: re.Match[str]) -> str:
    raw = m.group(0)
    decoded = html.unescape(raw)
    # Only an entity that decodes to invisible characters goes; `&lt;` and friends stay as
    # written (they show as text, and decoding them could forge markup).
    if decoded != raw and decoded and all(is_invisible(c) for c in decoded):
        return "\u200b"  # removed (and counted) by the invisible pass that follows
    return raw


def strip_comments(text: str) -> tuple[str, int]:
    """`text` without HTML comments, and how many there were. An unclosed comment hides the rest
    of the text (as a markdown HTML block does). One left-to-right scan, so removing a comment
    that brings `<!` and `--` together (`<!<!-- x -->-- y -->`) removes the new one too, in
    linear time however deeply an attacker nests them."""
    if "<!--" not in text:
        return text, 0
    out: list[str] = []
    opened: int | None = None  # where in `out` the comment being read began
    n = 0
    for ch in text:
        out.append(ch)
        if opened is None:
            if ch == "-" and len(out) >= 4 and out[-4:] == ["<", "!", "-", "-"]:
                opened = len(out) - 4
        elif ch == ">" and len(out) - opened >= 7 and out[-3:] == ["-", "-", ">"]:
            del out[opened:]
            opened = None
            n += 1
    if opened is not None:
        del out[opened:]
        n += 1
    return "".join(out), n


def _pass(text: str, counts: Counter[str]) -> str:
    # Entities that render invisible become the characters they are; comments go before the
    # invisible characters, so what hides inside a comment counts as the comment it is.
    text = _ENTITY_RE.sub(_entity, text)
    text, n = strip_comments(text)
    counts[HTML_COMMENTS] += n
    # Each distinct character is judged once; the removal itself runs in C.
    hidden = [ord(c) for c in set(text) if is_invisible(c)]
    if hidden:
        kept = text.translate(dict.fromkeys(hidden))
        counts[INVISIBLE] += len(text) - len(kept)
        text = kept

    def tag(m: re.Match[str]) -> str:
        out, k = _HIDDEN_ATTR_RE.subn("", m.group(0))
        counts[HIDDEN_ATTRIBUTES] += k
        return out

    text = _TAG_RE.sub(tag, text)
    text, n = _IMAGE_ALT_RE.subn("![]", text)
    counts[IMAGE_ALT] += n
    text, n = _LINK_TITLE_RE.subn(r"\1)", text)
    counts[LINK_TITLES] += n
    text, n = _REF_TITLE_RE.subn(r"\1", text)
    counts[LINK_TITLES] += n
    return text


def _fixpoint(text: str, counts: Counter[str], *, nfkc: bool) -> str:
    # Each pass only removes (or, with NFKC, normalises once), so this ends quickly. The bound
    # caps the work on hostile text (entities nested inside entities, `&&#8203;#8203;`, take
    # one pass per level); past it the output is still free of comments and invisible
    # characters, only a 65th level of such nesting would be left as visible text.
    for _ in range(64):
        before = text
        if nfkc:
            text = unicodedata.normalize("NFKC", text)
        text = _pass(text, counts)
        if text == before:
            break
    return text


def clean(text: str) -> Cleaned:
    """`text` without what a reader of the rendered page would not see, and what was removed."""
    counts: Counter[str] = Counter()
    out = _fixpoint(text, counts, nfkc=False)
    return Cleaned(out, {k: v for k, v in sorted(counts.items()) if v})


def clean_field(text: str) -> Cleaned:
    """`clean` plus Unicode NFKC, for the fields routes match on (title, labels)."""
    counts: Counter[str] = Counter()
    out = _fixpoint(text, counts, nfkc=True)
    return Cleaned(out, {k: v for k, v in sorted(counts.items()) if v})


def merge(*counts: dict[str, int]) -> dict[str, int]:
    """Sum several `counts` (e.g. the title's and the body's) into one, sorted by name."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return {k: v for k, v in sorted(total.items()) if v}

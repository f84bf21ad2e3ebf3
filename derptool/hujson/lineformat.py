"""``format`` without a tree, for documents written the usual way: one member or element per line.

Policy files are laid out like that: a composite is either opened at the end of a line, its members on
the lines after it, or written whole on one line. This pass lists the document's steps (the extra before
a value, then the value or a bracket) with one ``findall`` and writes each member directly: the extras
through the tree formatter's own extra formatting (:mod:`derptool.hujson.extra`), scalars as they are
(escapes rewritten), one-line composites of scalars inline or, past Go's 80-byte estimate, one item per
line, and the same for a one-line composite of those (a policy's one-line rules). Any other one-line
composite that holds composites goes through the tree formatter on its own. Object values are aligned in
blocks by the tree formatter's rules.

It gives up (returns ``None``) at anything else: a comment between a name and its value or before a
comma, a value on the line after its name, an inline root; :func:`derptool.hujson.format.format` then
builds the tree. Its tokens are the parser's, so invalid text makes it give up too, and the parser
reports Go's error. Its output is the tree formatter's, byte for byte: the tests hold the two together on
the project's files, Tailscale's recorded policies and generated documents, and against Go.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from derptool.hujson.ast import Value
from derptool.hujson.errors import GiveUp, HuJSONError
from derptool.hujson.extra import (
    LEAD_NL,
    ONE_COMMENT,
    PUNCH_CARD_WIDTH,
    RM_LEAD,
    RM_TRAIL,
    SPACE_IF_EMPTY,
    TRAIL_NL,
    UNINDENT,
    format_extra_uncached,
    one_comment_ends,
)
from derptool.hujson.gotext import decode_string, encode_string, rstrip_space
from derptool.hujson.parse import parse_tree, ws_len

_WS = b" \t\r\n"
_SP = rb"[ \t]*+"
# tokens exactly as the parser accepts them, so that nothing invalid gets through this pass
_STR = rb'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"'
_LITERAL = rb"(?:null|true|false|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)(?![-+.A-Za-z0-9])"
_SCALAR = rb"(?:" + _STR + b"|" + _LITERAL + b")"
_FLAT_ARRAY = rb"\[" + _SP + rb"(?:" + _SCALAR + _SP + rb"(?:," + _SP + _SCALAR + _SP + rb")*+(?:," + _SP + rb")?)?\]"
_PAIR = _STR + _SP + b":" + _SP + _SCALAR + _SP
_FLAT_OBJECT = rb"\{" + _SP + rb"(?:" + _PAIR + rb"(?:," + _SP + _PAIR + rb")*+(?:," + _SP + rb")?)?\}"
_PLAIN = rb'(?:"[^"\\\x00-\x1f]*+"|' + _LITERAL + b")"
_PLAIN_ARRAY = rb"\[(?:" + _PLAIN + rb"(?:, " + _PLAIN + rb")*+)?\]"
"""A one-line array as format writes it (no escapes, ", " between items), tried first: it is common."""
_EXTRA = rb"([ \t\n]*+(?:(?://[^\n]*+|/\*(?s:.*?)\*/)[ \t\n]*+)*+)"
# The document as a list of steps from one value to the next, found by one findall. Groups:
# 1 the extra before the step; then one of: 2 a closing bracket and 3 the comma after it; 4 a member
# name (objects) and a value on this line, either 5 an array written as format writes it inline or 6 any
# scalar or one-line composite of scalars, and 7 the comma after it, or 8 "{" or "[" opening a composite
# value; 9 from a byte that fits nowhere to the end (the pass gives up; one step, however much follows).
# At the end of the text a step has none of them (its extra is the document's last).
_STEPS = re.compile(
    _EXTRA
    + rb"(?:([\]}])"
    + _SP
    + rb"(,?)|(?:("
    + _STR
    + rb")"
    + _SP
    + b":"
    + _SP
    + rb")?(?:(?:("
    + _PLAIN_ARRAY
    + b")|("
    + _SCALAR
    + b"|"
    + _FLAT_ARRAY
    + b"|"
    + _FLAT_OBJECT
    + rb"))"
    + _SP
    + rb"(,?)|([\[{]))|\Z|([\s\S]++))"
)
_EXTRA_VALID = re.compile(rb"(?:[ \t\n]++|//[^\n]*+\n|/\*(?s:.*?)\*/)*+")  # line comments end with a newline
_SCALARS = re.compile(_SCALAR)
_MEMBERS = re.compile(b"(" + _STR + b")" + _SP + b":" + _SP + b"(" + _SCALAR + b")")
_NOT_NORMAL_ARRAY = re.compile(rb"\[ |\s[\],]|,(?! )|,  |\\|\t")
"""Something in a one-line array that format would change (or might: a comma inside a string)."""

Step = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes]
_DONE: Step = (b"", b"", b"", b"", b"", b"", b"", b"", b"")


Subtree = Callable[[Value, int, bool], tuple[bool, bool]]
"""The tree formatter's layout of one composite as a value at a depth of a (standard or not) document;
returns whether the composite alone is standard and whether a value inside it has a newline around it
(which keeps it out of value alignment)."""


def format_lines(b: bytes, format_subtree: Subtree, standard: bool = False, *, valid: bool = False) -> bytes | None:
    """Go's ``Format`` of the HuJSON *b*, or ``None`` when the tree formatter must do it.

    ``None`` also for invalid input (the tree parser then reports Go's error). Pass *valid* when *b* is
    known to be valid; it must be for non-ASCII input (comments are not checked for UTF-8 here) and for
    input with carriage returns (they are rewritten first). *format_subtree* is the tree formatter's
    (passed in: it imports this module). *standard* says the document has no comment and no trailing
    comma; when that is not known, pass ``False``: a document that turns out standard is formatted again
    with ``True``.
    """
    if b"\r" in b:
        if not valid:
            return None
        # In valid text a carriage return can only sit between tokens, where format turns it into a line
        # break or a space (Go's Extra.format): do that for the whole text at once.
        b = b.replace(b"\r\n", b"\n").replace(b"\n\r", b"\n").replace(b"\r", b" ")
    try:
        out, nonstandard = _Pass(b, format_subtree, standard).run()
    except (GiveUp, HuJSONError):
        return None
    if not standard and not nonstandard:
        return format_lines(b, format_subtree, True, valid=valid)
    return out


def _tabs(n: int) -> bytes:
    return b"\t" * n


class _Pass:
    """One formatting pass over a document."""

    def __init__(self, b: bytes, subtree: Subtree, standard: bool) -> None:
        self.b = b
        self.subtree = subtree
        self.standard = standard
        self.nonstandard = False  # a comment or a trailing comma was seen
        self.extras: dict[tuple[bytes, int, int], tuple[bytes, bool]] = {}
        self.strings: dict[bytes, bytes] = {}
        self.flats: dict[tuple[bytes, int], tuple[bytes, bool]] = {}
        # the formatted whitespace around a one-comment extra, by newlines before and after, depth, options
        self.around: dict[tuple[int, int, int, int], tuple[bytes, bytes, bool]] = {}

    # -- pieces ------------------------------------------------------------------------------------

    def extra(self, extra: bytes, depth: int, flags: int) -> tuple[bytes, bool]:
        """The formatted extra, and whether it starts a new alignment block (a blank or comment line)."""
        one = ONE_COMMENT.fullmatch(extra)
        if one is not None and extra.isascii():
            # one comment (most extras with a comment): only the whitespace around it depends on the options
            before, comment, after = one.groups()
            head, tail = before.count(b"\n"), after.count(b"\n")
            if comment[1] == 0x2A or tail:  # a line comment needs its newline
                key = (head if head < 2 else 2, tail if tail < 2 else 2, depth, flags)
                around = self.around.get(key)
                if around is None:
                    start, end = one_comment_ends(*key)
                    around = self.around[key] = (start, end, start.count(b"\n") + end.count(b"\n") > 1)
                self.nonstandard = True
                r = self.extras[(extra, depth, flags)] = (
                    around[0] + comment.rstrip(b" \t\n\v\f\r") + around[1],
                    around[2],
                )
                return r
        x = format_extra_uncached(extra, depth, flags)
        r = self.extras[(extra, depth, flags)] = (x, x.count(b"\n") > 1)
        if not self.nonstandard and b"/" in extra:
            self.nonstandard = True
        return r

    def string(self, raw: bytes) -> bytes:
        """A string with its escapes written as Go writes them."""
        r = self.strings.get(raw)
        if r is None:
            r = self.strings[raw] = encode_string(decode_string(raw))
        return r

    def flat(self, text: bytes, depth: int, plain: bool = False) -> tuple[bytes, bool]:
        """A one-line composite of scalars as a value at *depth*, and whether it spans lines.

        *plain* says *text* is an array already written as format writes it inline.
        """
        if not plain:
            if text[-2:-1] in b" \t," and text[:-1].rstrip(b" \t").endswith(b","):
                self.nonstandard = True  # a trailing comma
            # written as format writes it inline after all? Then Go's width estimate is its length + 2.
            if text[0] == 0x5B and _NOT_NORMAL_ARRAY.search(text) is None:
                plain = True
        if plain and (len(text) + 2 <= PUNCH_CARD_WIDTH or text == b"[]"):
            r = self.flats[(text, depth)] = (text, False)
            return r
        is_obj = text[0] == 0x7B
        if is_obj:  # name and value pairs: one match each, the ": " written into the name
            names_values = _MEMBERS.findall(text)
            if not plain and b"\\" in text:
                names_values = [
                    (self.string(k) if b"\\" in k else k, self.string(x) if b"\\" in x else x) for k, x in names_values
                ]
            items = [k + b": " + x for k, x in names_values]
            width = 2 + sum(map(len, items)) + 2 * len(items)  # Go's estimate: 2 more for each name and value
        else:
            # strings only, written as format writes them? Then ", " separates them and nothing else does
            items = text[1:-1].split(b", ") if plain and text[1] == 0x22 == text[-2] else []
            if not items or len(items) * 2 != text.count(b'"'):
                items = _SCALARS.findall(text)
                if not plain and b"\\" in text:
                    items = [self.string(x) if b"\\" in x else x for x in items]
            width = 2 + sum(map(len, items)) + 2 * len(items)  # Go's width estimate
        if width <= PUNCH_CARD_WIDTH:
            v = (b"{" + b", ".join(items) + b"}") if is_obj else (b"[" + b", ".join(items) + b"]")
            r = self.flats[(text, depth)] = (v, False)
            return r
        if is_obj:
            v = self.one_per_line(depth, [x for _, x in names_values], [k for k, _ in names_values])
        else:
            v = self.one_per_line(depth, items)
        r = self.flats[(text, depth)] = (v, True)
        return r

    def one_per_line(self, depth: int, values: list[bytes], names: list[bytes] | None = None) -> bytes:
        """A composite as a value at *depth*, expanded: one item a line, an object's values aligned."""
        inner = b"\n" + _tabs(depth + 1)
        if names is not None:
            widest = max(map(len, names))
            body = b",".join(
                [inner + k + b":" + b" " * (1 + widest - len(k)) + x for k, x in zip(names, values, strict=True)]
            )
            opening, closing = b"{", b"}"
        else:
            body = inner + (b"," + inner).join(values)
            opening, closing = b"[", b"]"
        return opening + body + (b"" if self.standard else b",") + b"\n" + _tabs(depth) + closing

    def inline(self, steps: list[Step], i: int, opened: bytes, depth: int) -> tuple[bytes, bytes, int, bool]:
        """The composite opened just before ``steps[i]`` on the same line: ``(text, comma after it, index
        of the next step, whether a value inside has a newline around it)``. One of scalars and one-line
        composites of scalars (a policy's one-line rules) is written here; the tree formatter does the
        rest."""
        done = self.inline_of_flats(steps, i, opened, depth)
        if done is not None:
            return done
        pieces = [opened]
        level = 1
        while True:
            extra, closing, close_comma, name, plain, text, comma, opened, _ = steps[i]
            i += 1
            text = plain or text
            pieces.append(extra)
            if name:
                pieces.append(name + b":")
            if closing:
                level -= 1
                if level == 0:
                    break
                pieces.append(closing + close_comma)
            elif text:
                pieces.append(text + b" " + comma)  # a space keeps two values from running together
            elif opened:
                level += 1
                pieces.append(opened)
            else:
                raise GiveUp
        pieces.append(closing)
        tree = parse_tree(b"".join(pieces))
        alone_standard, inner_newline = self.subtree(tree, depth, self.standard)
        if not alone_standard:
            self.nonstandard = True
        return tree.pack(), close_comma, i, inner_newline

    def inline_of_flats(
        self, steps: list[Step], i: int, opened: bytes, depth: int
    ) -> tuple[bytes, bytes, int, bool] | None:
        """:meth:`inline` for a composite whose values are scalars or composites that fit on their line,
        with nothing but spaces between tokens and no trailing comma; ``None`` for anything else."""
        is_obj = opened == b"{"
        names: list[bytes] = []
        values: list[bytes] = []
        width = 2  # Go's estimate: 2 for the brackets, each name + 2, each value + 2
        comma = b","
        while True:
            extra, closing, close_comma, name, plain, text, comma_after, deeper, _ = steps[i]
            i += 1
            if extra and (b"\n" in extra or b"/" in extra):
                return None
            if closing:
                if (closing == b"}") is not is_obj or comma or not values:
                    return None
                break
            value = plain or text
            if not comma or (not name) is is_obj or deeper or not value:
                return None
            if value[0] == 0x5B or value[0] == 0x7B:
                value, multi = self.flats.get((value, depth + 1)) or self.flat(value, depth + 1, bool(plain))
                if multi:
                    return None  # expanded inside a line: the tree formatter knows how that goes
                width += len(value) + 4 if len(value) > 2 else 4  # an empty one counts 2
            else:
                if b"\\" in value:
                    value = self.string(value)
                width += len(value) + 2
            if name:
                if b"\\" in name:
                    name = self.string(name)
                width += len(name) + 2
                names.append(name)
            values.append(value)
            comma = comma_after
        if width <= PUNCH_CARD_WIDTH:
            body = b", ".join([k + b": " + v for k, v in zip(names, values, strict=True)] if is_obj else values)
            return opened + body + closing, close_comma, i, False
        return self.one_per_line(depth, values, names if is_obj else None), close_comma, i, True

    # -- the walk ----------------------------------------------------------------------------------

    def run(self) -> tuple[bytes, bool]:
        steps: list[Step] = _STEPS.findall(self.b)
        lead, closing, _, name, _, _, _, opening, _ = steps[0]
        if not opening or name:
            raise GiveUp  # a scalar document
        ex, closing = steps[1][0], steps[1][1]
        if b"\n" not in ex or (closing and not ex.strip(_WS)):
            raise GiveUp  # an inline root: the tree formatter's business (small documents)
        if b"/" in lead:
            self.nonstandard = True
        before = format_extra_uncached(lead, 0, 0)
        out: list[bytes] = [before[ws_len(before, 0) :] + opening]
        append = out.append
        extend = out.extend
        extras = self.extras
        flats = self.flats
        standard = self.standard
        first_flags, next_flags = LEAD_NL | RM_LEAD, LEAD_NL | SPACE_IF_EMPTY
        # the composite being walked: is it an object, members so far, depth of its members, alignment
        # block (index in out of each aligned member's ": " and the length of its name)
        is_obj = opening == b"{"
        n = 0
        d1 = 1
        flags = first_flags
        block: list[tuple[int, int]] = []
        stack: list[tuple[bool, int, int, list[tuple[int, int]], tuple[int, int] | None]] = []
        last_comma = b""
        i = 1

        def close_block() -> None:
            if len(block) > 1:
                widest = max([w for _, w in block])
                for k, w in block:
                    if w < widest:
                        out[k] = b": " + b" " * (widest - w)
            block.clear()

        while True:
            extra, closing, close_comma, name, plain, text, comma, opened, _ = steps[i]
            steps[i] = _DONE  # what is not kept in the output is freed as the walk goes (peak memory)
            i += 1
            if closing:  # the composite ends
                if (closing == b"}") is not is_obj:
                    raise GiveUp  # "]" closing an object or "}" an array: invalid
                if n:
                    if last_comma:
                        self.nonstandard = True
                    elif not standard:
                        out[-1] = b","  # the (empty) comma after the last value
                if block:
                    close_block()
                f = TRAIL_NL | RM_TRAIL | UNINDENT | (0 if n else RM_LEAD)
                x = (extras.get((extra, d1, f)) or self.extra(extra, d1, f))[0]
                if not stack:
                    if close_comma:
                        raise GiveUp  # a comma after the document: invalid
                    append(x + closing)
                    break
                inner = n
                is_obj, n, d1, block, pending = stack.pop()
                if pending is not None:
                    if inner:
                        if block:
                            close_block()
                    else:  # an empty composite has no inner newline, however it is laid out
                        block.append(pending)
                flags = next_flags
                last_comma = close_comma
                extend((x, closing, close_comma))
                continue
            if (n and not last_comma) or (not name) is is_obj or not (plain or text or opened):
                raise GiveUp  # not a member of this composite (invalid, or laid out in a way not handled)
            r = extras.get((extra, d1, flags)) or self.extra(extra, d1, flags)
            n += 1
            flags = next_flags
            if name and b"\\" in name:
                name = self.string(name)
            if plain:  # an array as format writes it inline, unless it is too wide
                if len(plain) <= PUNCH_CARD_WIDTH - 2:  # Go's width estimate is its length + 2
                    v = plain
                    multi = False
                else:
                    v, multi = flats.get((plain, d1)) or self.flat(plain, d1, True)
                last_comma = comma
            elif text:  # a value on this line
                c = text[0]
                if c == 0x5B or c == 0x7B:
                    v, multi = flats.get((text, d1)) or self.flat(text, d1)
                else:
                    v = self.string(text) if b"\\" in text else text
                    multi = False
                last_comma = comma
            else:
                nxt = steps[i]
                if b"\n" in nxt[0] and (not nxt[1] or nxt[0].strip(_WS)):  # expanded: a new line follows "{"
                    if name:
                        if r[1] and block:
                            close_block()
                        pending = (len(out) + 2, len(name))  # aligned if it turns out empty (Go's rule)
                        extend((r[0], name, b": ", opened))
                    else:
                        pending = None
                        extend((r[0], opened))
                    stack.append((is_obj, n, d1, block, pending))
                    is_obj, n, d1, flags, block = opened == b"{", 0, d1 + 1, first_flags, []
                    continue
                v, last_comma, i, multi = self.inline(steps, i, opened, d1)
            if name:
                if multi:
                    if block:
                        close_block()
                else:
                    if r[1] and block:
                        close_block()
                    block.append((len(out) + 2, len(name)))
                extend((r[0], name, b": ", v, last_comma))
            else:
                extend((r[0], v, last_comma))
        end = steps[i]
        if any(end[1:]):
            raise GiveUp  # more after the document: invalid
        rest = end[0]
        if _EXTRA_VALID.match(rest).end() != len(rest):  # type: ignore[union-attr]
            raise GiveUp  # a line comment at the very end, without its newline: invalid
        if b"/" in rest:
            self.nonstandard = True
        append(rstrip_space(format_extra_uncached(rest, 0, 0)) + b"\n")
        # bytes.join keeps an 80-byte buffer record per piece while it runs: join in slices
        return b"".join([b"".join(out[k : k + 4096]) for k in range(0, len(out), 4096)]), self.nonstandard

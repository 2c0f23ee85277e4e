"""What `terraform fmt` would change in a file, without terraform.

`terraform fmt` is hclwrite's formatter (hashicorp/hcl, hclwrite/format.go).
This checker reproduces the parts of it that decide the layout of a file:

- indentation: two spaces per open bracket level. A line whose brackets open
  more than they close starts one level (whatever the count), a line that
  closes more than it opens ends levels and is itself indented at the new
  level (formatIndent);
- the "assign" column: in a run of consecutive lines that each assign a value
  with `=` and whose right-hand side opens and closes as many brackets as it
  closes (a one-line value), the `=` signs line up one space after the longest
  name; a line without such an assignment (a comment, a blank line, a block,
  a multi-line value) ends the run (linesForFormat, formatCells);
- trailing comments of consecutive lines line up the same way;
- exactly one space after `=`, after a comma and around operators is not
  checked token by token; what is checked: no tab, no trailing whitespace, no
  run of spaces inside a line except the alignment padding before `=` and
  before a trailing comment, one newline at the end of the file.

Strings (with ${ } interpolations, which count as brackets as in hclwrite)
and comments are tokenized, so brackets, `=` and `#` inside them are ignored.
Heredocs are not used by this repository and are reported as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

OPEN = "([{"
CLOSE = ")]}"


@dataclass
class Line:
    number: int
    text: str
    # (column, kind) of the tokens that matter: "open", "close", "assign",
    # "comment", "space-run"
    events: list[tuple[int, str]] = field(default_factory=list)
    code_end: int = 0  # column after the last non-comment, non-space character


class FormatError(Exception):
    pass


def _scan(text: str) -> list[Line]:
    """Split into lines and find brackets, assignments and comments outside
    strings. Template interpolations ${ } open and close like brackets."""
    lines = [Line(i + 1, t) for i, t in enumerate(text.split("\n"))]
    # Stack of contexts: "code" (inside brackets or an interpolation) or
    # "string".
    stack: list[str] = ["code"]
    block_comment = False
    for line in lines:
        s = line.text
        i = 0
        n = len(s)
        while i < n:
            c = s[i]
            ctx = stack[-1]
            if block_comment:
                if s.startswith("*/", i):
                    block_comment = False
                    line.events.append((i, "comment-end"))
                    i += 2
                else:
                    i += 1
                continue
            if ctx == "string":
                if c == "\\":
                    i += 2
                    continue
                if s.startswith("$${", i) or s.startswith("%%{", i):
                    i += 3
                    continue
                if s.startswith("${", i) or s.startswith("%{", i):
                    stack.append("interp")
                    line.events.append((i, "open"))
                    i += 2
                    continue
                if c == '"':
                    stack.pop()
                i += 1
                continue
            # code or interp
            if c == '"':
                stack.append("string")
                i += 1
                continue
            if c == "#" or s.startswith("//", i):
                line.events.append((i, "comment"))
                break
            if s.startswith("/*", i):
                block_comment = True
                line.events.append((i, "comment"))
                i += 2
                continue
            if s.startswith("<<", i) and (i + 2 < n and (s[i + 2] == "-" or s[i + 2].isalpha())):
                raise FormatError(f"line {line.number}: heredocs are not supported by this checker")
            if c in OPEN:
                line.events.append((i, "open"))
            elif c in CLOSE:
                if ctx == "interp" and c == "}":
                    stack.pop()
                line.events.append((i, "close"))
            elif c == "=":
                prev = s[i - 1] if i > 0 else ""
                nxt = s[i + 1] if i + 1 < n else ""
                if prev not in "=!<>" and nxt not in "=>":
                    line.events.append((i, "assign"))
            i += 1
        if stack[-1] == "string":
            raise FormatError(f"line {line.number}: string not closed on its line")
        code = s
        comments = [col for col, kind in line.events if kind == "comment"]
        if comments:
            code = s[: comments[0]]
        line.code_end = len(code.rstrip())
    return lines


def problems(text: str) -> list[str]:
    """Every difference from terraform fmt's layout this checker can see, as
    'line N: message'."""
    out: list[str] = []
    if "\t" in text:
        out.append("tab characters (terraform fmt indents with spaces)")
    if not text.endswith("\n") or text.endswith("\n\n"):
        out.append("the file must end with exactly one newline")
    try:
        lines = _scan(text.rstrip("\n"))
    except FormatError as e:
        return out + [str(e)]

    depth: list[int] = []  # open bracket counts of the indentation levels
    assign_run: list[tuple[Line, int, int]] = []  # (line, lead width, '=' column)
    comment_run: list[tuple[Line, int, int]] = []  # (line, code end, '#' column)

    def close_assign_run():
        if assign_run:
            want = max(w for _, w, _ in assign_run) + 1
            for ln, _, col in assign_run:
                if col != want:
                    out.append(f"line {ln.number}: '=' at column {col + 1}, terraform fmt aligns it at column {want + 1}")
            assign_run.clear()

    def close_comment_run():
        if len(comment_run) > 0:
            want = max(e for _, e, _ in comment_run) + 1
            for ln, _, col in comment_run:
                if col != want:
                    out.append(f"line {ln.number}: trailing comment at column {col + 1}, terraform fmt puts it at column {want + 1}")
            comment_run.clear()

    for line in lines:
        s = line.text
        if s != s.rstrip():
            out.append(f"line {line.number}: trailing whitespace")
        stripped = s.strip()
        if not stripped:
            close_assign_run()
            close_comment_run()
            continue
        kinds = [k for _, k in line.events]
        net = kinds.count("open") - kinds.count("close")
        # Indentation (formatIndent).
        if net < 0:
            closed = -net
            while closed > 0 and depth:
                if closed >= depth[-1]:
                    closed -= depth.pop()
                else:
                    depth[-1] -= closed
                    closed = 0
        indent = 2 * len(depth)
        actual = len(s) - len(s.lstrip(" "))
        if actual != indent:
            out.append(f"line {line.number}: indented {actual} spaces, terraform fmt indents {indent}")
        if net > 0:
            depth.append(net)

        # The assign cell: the first '=' (not the first token) whose
        # right-hand side has balanced brackets.
        assign_col = None
        first = [(c, k) for c, k in line.events if k == "assign"]
        if first and s[: first[0][0]].strip():
            col = first[0][0]
            rhs = [k for c, k in line.events if c > col]
            if rhs.count("open") == rhs.count("close"):
                assign_col = col
        if assign_col is None:
            close_assign_run()
        else:
            lead = len(s[:assign_col].rstrip())
            assign_run.append((line, lead, assign_col))
            after = s[assign_col + 1 :]
            if after and not after.startswith(" ") or after.startswith("  "):
                out.append(f"line {line.number}: exactly one space after '='")

        # Trailing comments (not comment-only lines).
        comment_cols = [c for c, k in line.events if k == "comment"]
        if comment_cols and line.code_end > 0 and comment_cols[0] > line.code_end:
            comment_run.append((line, line.code_end, comment_cols[0]))
        else:
            close_comment_run()

        # Runs of spaces inside the code (outside strings): only alignment
        # padding before '=' or a trailing comment.
        allowed = set()
        if assign_col is not None:
            allowed.add(assign_col)
        if comment_cols:
            allowed.add(comment_cols[0])
        _check_inner_spaces(line, allowed, out)

    close_assign_run()
    close_comment_run()
    if depth:
        out.append("brackets are not balanced at the end of the file")
    return out


def _check_inner_spaces(line: Line, allowed: set[int], out: list[str]) -> None:
    s = line.text
    body_start = len(s) - len(s.lstrip(" "))
    end = line.code_end
    in_string = False
    interp = 0
    i = body_start
    while i < end:
        c = s[i]
        if in_string and interp == 0:
            if c == "\\":
                i += 2
                continue
            if s.startswith("${", i) or s.startswith("%{", i):
                if not (i > 0 and s[i - 1] in "$%"):
                    interp += 1
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
            i += 1
            continue
        if in_string and interp and c == "}":
            interp -= 1
            i += 1
            continue
        if c == " " and i + 1 < end and s[i + 1] == " ":
            j = i
            while j < end and s[j] == " ":
                j += 1
            if j not in allowed:
                out.append(f"line {line.number}: several spaces at column {i + 1} (terraform fmt leaves one)")
            i = j
            continue
        i += 1


def check_file(path: Path) -> list[str]:
    return [f"{path}: {p}" for p in problems(path.read_text())]

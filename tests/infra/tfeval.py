"""Load Terraform configurations with python-hcl2 and evaluate their expressions.

There is no terraform binary on these machines, yet the dashboard body, the
alarms, the Contributor Insights rules and the function's environment are built
by Terraform expressions (jsonencode of HCL objects, for-expressions over the
NAT gateways, format() of Metrics Insights queries). To check what AWS would
receive, this module evaluates those expressions itself, over python-hcl2's
parse tree, for the subset of the language the module uses:

- literals, strings with interpolation (no %{ } directives), tuples, objects;
- var.*, local.*, count.index, each.key/each.value (for_each over a map or a
  set of strings, keys known at plan time as Terraform requires), path.module,
  data.* (from a fake world the test
  supplies), resource attributes: an argument written in the configuration
  evaluates to its value, anything else (arn, id, url, ...) to an Unknown
  placeholder, as it would be "known after apply";
- arithmetic, comparison and logical operators (without short-circuit, like
  Terraform), conditionals, for-expressions, splats, argument expansion (...);
- the built-in functions listed in FUNCTIONS.

Anything outside that subset raises EvalError naming the construct, so a new
construct in the module fails the tests loudly instead of being mis-evaluated.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import hcl2
from lark import Token, Tree


class EvalError(Exception):
    """An expression could not be evaluated (bad reference, unsupported construct, type error)."""


@dataclass(frozen=True)
class Unknown:
    """A value Terraform only knows after apply, such as a resource ARN."""

    path: str

    def __str__(self) -> str:
        return f"<known after apply: {self.path}>"


# ---------------------------------------------------------------------------
# Configuration structure
# ---------------------------------------------------------------------------


@dataclass
class Block:
    type: str
    labels: list[str]
    attributes: dict[str, Tree]
    blocks: list["Block"]
    file: Path
    line: int

    def blocks_of(self, type_: str) -> list["Block"]:
        return [b for b in self.blocks if b.type == type_]

    @property
    def address(self) -> str:
        return ".".join([self.type, *self.labels])


@dataclass
class Config:
    """All the .tf files of one directory (one Terraform module)."""

    directory: Path
    files: dict[Path, list[Block]] = field(default_factory=dict)

    @property
    def blocks(self) -> list[Block]:
        return [b for blocks in self.files.values() for b in blocks]

    def top(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]

    @property
    def variables(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.top("variable")}

    @property
    def outputs(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.top("output")}

    @property
    def locals(self) -> dict[str, Tree]:
        out: dict[str, Tree] = {}
        for b in self.top("locals"):
            for name, expr in b.attributes.items():
                if name in out:
                    raise EvalError(f"local.{name} is defined twice")
                out[name] = expr
        return out

    @property
    def resources(self) -> dict[tuple[str, str], Block]:
        return {(b.labels[0], b.labels[1]): b for b in self.top("resource")}

    @property
    def data_sources(self) -> dict[tuple[str, str], Block]:
        return {(b.labels[0], b.labels[1]): b for b in self.top("data")}

    @property
    def module_calls(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.top("module")}


def _meaningful(children: list) -> list:
    """Children without newline/comment noise."""
    out = []
    for c in children:
        if isinstance(c, Tree) and c.data == "new_line_or_comment":
            continue
        if isinstance(c, Token) and c.type == "NL_OR_COMMENT":
            continue
        out.append(c)
    return out


def _name_of(node) -> str:
    """Text of an identifier, keyword or literal used as a name."""
    if isinstance(node, Token):
        return str(node)
    if isinstance(node, Tree) and node.data in ("identifier", "keyword", "literal_value"):
        return str(node.children[0])
    if isinstance(node, Tree) and node.data == "string":
        parts = [c for c in node.children if isinstance(c, Tree) and c.data == "string_part"]
        text = ""
        for p in parts:
            tok = p.children[0]
            if not isinstance(tok, Token):
                raise EvalError("interpolation in a block label")
            text += str(tok)
        return text
    raise EvalError(f"not a name: {node!r}")


def _parse_body(body: Tree, file: Path) -> tuple[dict[str, Tree], list[Block]]:
    attributes: dict[str, Tree] = {}
    blocks: list[Block] = []
    for child in _meaningful(body.children):
        if child.data == "attribute":
            kids = _meaningful(child.children)
            name = _name_of(kids[0])
            if name in attributes:
                raise EvalError(f"{file}: attribute {name} set twice")
            attributes[name] = kids[-1]
        elif child.data == "block":
            kids = _meaningful(child.children)
            type_ = _name_of(kids[0])
            labels = []
            i = 1
            while not (isinstance(kids[i], Token) and kids[i].type == "LBRACE"):
                labels.append(_name_of(kids[i]))
                i += 1
            inner = kids[i + 1]
            attrs, sub = _parse_body(inner, file)
            blocks.append(Block(type_, labels, attrs, sub, file, _line(kids[0])))
        else:  # pragma: no cover - grammar has nothing else in a body
            raise EvalError(f"{file}: unexpected {child.data}")
    return attributes, blocks


def _line(node) -> int:
    if isinstance(node, Token):
        return node.line or 0
    for c in node.children:
        n = _line(c)
        if n:
            return n
    return 0


def parse_file(path: Path) -> list[Block]:
    tree = hcl2.parses_to_tree(path.read_text())
    body = tree.children[0]
    _, blocks = _parse_body(body, path)
    return blocks


def load_config(directory: Path) -> Config:
    cfg = Config(directory)
    for path in sorted(directory.glob("*.tf")):
        cfg.files[path] = parse_file(path)
    if not cfg.files:
        raise EvalError(f"no .tf files in {directory}")
    return cfg


# ---------------------------------------------------------------------------
# References (for the "used" / "exists" checks)
# ---------------------------------------------------------------------------


def _ref_path(node) -> list[str] | None:
    if not isinstance(node, Tree):
        return None
    kids = _meaningful(node.children)
    if node.data == "expr_term":
        if len(kids) == 1:
            if isinstance(kids[0], Tree) and kids[0].data == "identifier":
                return [str(kids[0].children[0])]
            return _ref_path(kids[0])
        return None
    if node.data == "get_attr_expr_term":
        p = _ref_path(kids[0])
        return None if p is None else p + [_name_of(_meaningful(kids[1].children)[1])]
    if node.data == "index_expr_term":
        p = _ref_path(kids[0])
        return None if p is None else p + ["[]"]
    if node.data in ("attr_splat_expr_term", "full_splat_expr_term"):
        p = _ref_path(kids[0])
        if p is None:
            return None
        p = p + ["[*]"]
        for part in _meaningful(kids[1].children)[1:]:
            if isinstance(part, Tree) and part.data == "get_attr":
                p.append(_name_of(_meaningful(part.children)[1]))
        return p
    return None


def references(tree: Tree) -> set[tuple[str, ...]]:
    """Every reference path in an expression: ('var', 'x'), ('aws_sqs_queue', 'q', 'arn'), ..."""
    out: set[tuple[str, ...]] = set()
    for node in tree.iter_subtrees():
        if node.data in ("get_attr_expr_term", "attr_splat_expr_term", "full_splat_expr_term"):
            p = _ref_path(node)
            if p:
                out.add(tuple(p))
    return out


def block_references(block: Block) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for expr in block.attributes.values():
        out |= references(expr)
    for b in block.blocks:
        out |= block_references(b)
    return out


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(v)
    if isinstance(v, Unknown):
        return str(v)
    if v is None:
        raise EvalError("null value in a string template")
    raise EvalError(f"cannot convert {type(v).__name__} to string")


def to_number(v: Any) -> int | float:
    if isinstance(v, bool):
        raise EvalError("bool is not a number")
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError as e:
                raise EvalError(f"not a number: {v!r}") from e
    raise EvalError(f"not a number: {v!r}")


def to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v == "true":
        return True
    if v == "false":
        return False
    if isinstance(v, Unknown):
        raise EvalError(f"condition depends on {v.path}, known only after apply")
    raise EvalError(f"not a bool: {v!r}")


def _plain(v: Any) -> Any:
    """Value as JSON would carry it: Unknowns become their placeholder text."""
    if isinstance(v, Unknown):
        return str(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def jsonencode(v: Any) -> str:
    """Terraform's jsonencode: compact, object keys sorted, <, > and & escaped."""
    text = json.dumps(_plain(v), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _re(pattern: str) -> re.Pattern:
    # RE2 and Python agree on everything the module uses; (?P<n>) is the same.
    try:
        return re.compile(pattern)
    except re.error as e:
        raise EvalError(f"bad regex {pattern!r}: {e}") from e


def _regex_result(m: re.Match) -> Any:
    if m.re.groupindex:
        return {k: m.group(k) for k in m.re.groupindex}
    if m.re.groups:
        return list(m.groups())
    return m.group(0)


def _fn_regex(pattern, s):
    m = _re(pattern).search(s)
    if not m:
        raise EvalError(f"regex {pattern!r} does not match {s!r}")
    return _regex_result(m)


def _fn_regexall(pattern, s):
    return [_regex_result(m) for m in _re(pattern).finditer(s)]


def _fn_format(fmt, *args):
    out, i, ai = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        if verb == "%":
            out.append("%")
        elif verb in "sdvq":
            if ai >= len(args):
                raise EvalError(f"format {fmt!r}: not enough arguments")
            a = args[ai]
            ai += 1
            if verb == "d":
                n = to_number(a)
                if float(n) != int(n):
                    raise EvalError(f"format %d of non-integer {a!r}")
                out.append(str(int(n)))
            elif verb == "q":
                out.append(json.dumps(to_string(a)))
            else:
                out.append(to_string(a))
        else:
            raise EvalError(f"format verb %{verb} not supported here")
        i += 2
    if ai != len(args):
        raise EvalError(f"format {fmt!r}: too many arguments")
    return "".join(out)


def _fn_flatten(v):
    out = []
    for x in v:
        if isinstance(x, list):
            out.extend(_fn_flatten(x))
        else:
            out.append(x)
    return out


def _fn_merge(*maps):
    out: dict = {}
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise EvalError("merge of a non-object")
        out.update(m)
    return out


def _fn_cidrhost(prefix, n):
    if not isinstance(prefix, str) or "/" not in prefix:
        raise EvalError(f"invalid CIDR {prefix!r}")
    net = ipaddress.ip_network(prefix, strict=False)
    n = int(to_number(n))
    if n >= net.num_addresses:
        raise EvalError("host number out of range")
    return str(net.network_address + n)


def _fn_distinct(xs):
    seen, out = set(), []
    for x in xs:
        key = json.dumps(_plain(x), sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


def _fn_length(v):
    if isinstance(v, (list, dict, str)):
        return len(v)
    raise EvalError(f"length of {type(v).__name__}")


def _fn_concat(*lists):
    out = []
    for x in lists:
        if not isinstance(x, list):
            raise EvalError(f"concat of a non-list {x!r}")
        out.extend(x)
    return out


def _fn_join(sep, lst, *more):
    items = list(lst) + [y for m in more for y in m]
    return sep.join(to_string(x) for x in items)


def _fn_range(*a):
    nums = [to_number(x) for x in a]
    if len(nums) == 1:
        return list(range(int(nums[0])))
    if len(nums) == 2:
        return list(range(int(nums[0]), int(nums[1])))
    return list(range(int(nums[0]), int(nums[1]), int(nums[2])))


def _fn_lookup(m, k, *default):
    if k in m:
        return m[k]
    if default:
        return default[0]
    raise EvalError(f"lookup(): no key {k!r}")


def _fn_tostring(v):
    if v is None:
        return None
    if isinstance(v, (list, dict)):
        raise EvalError("tostring of a collection")
    return to_string(v)


def _fn_one(xs):
    if not isinstance(xs, list):
        raise EvalError("one() of a non-list")
    if len(xs) > 1:
        raise EvalError(f"one() of a list with {len(xs)} elements")
    return xs[0] if xs else None


def _fn_substr(s, offset, length):
    """Terraform's substr: a length of -1, or one past the end, takes the rest."""
    offset, length = int(to_number(offset)), int(to_number(length))
    if offset < 0:
        offset = max(len(s) + offset, 0)
    return s[offset:] if length < 0 else s[offset : offset + length]


def _fn_fileexists(p):
    return os.path.isfile(p)


def _fn_filebase64sha256(p):
    return base64.b64encode(hashlib.sha256(Path(p).read_bytes()).digest()).decode()


FUNCTIONS: dict[str, Callable] = {
    "abs": lambda x: abs(to_number(x)),
    "alltrue": lambda xs: all(to_bool(x) for x in xs),
    "anytrue": lambda xs: any(to_bool(x) for x in xs),
    "ceil": lambda x: math.ceil(to_number(x)),
    "cidrhost": _fn_cidrhost,
    "compact": lambda xs: [x for x in xs if x not in (None, "")],
    "concat": _fn_concat,
    "contains": lambda xs, v: v in xs,
    "distinct": _fn_distinct,
    "element": lambda xs, i: xs[int(to_number(i)) % len(xs)],
    "endswith": lambda s, suffix: s.endswith(suffix),
    "fileexists": _fn_fileexists,
    "filebase64sha256": _fn_filebase64sha256,
    "flatten": _fn_flatten,
    "floor": lambda x: math.floor(to_number(x)),
    "format": _fn_format,
    "index": lambda xs, v: xs.index(v),
    "join": _fn_join,
    "jsonencode": jsonencode,
    "jsondecode": json.loads,
    "keys": lambda m: sorted(m),
    "length": _fn_length,
    "lookup": _fn_lookup,
    "lower": lambda s: s.lower(),
    "max": lambda *xs: max(to_number(x) for x in xs),
    "merge": _fn_merge,
    "min": lambda *xs: min(to_number(x) for x in xs),
    "one": _fn_one,
    "range": _fn_range,
    "regex": _fn_regex,
    "regexall": _fn_regexall,
    "replace": lambda s, old, new: s.replace(old, new) if not (old.startswith("/") and old.endswith("/")) else _re(old[1:-1]).sub(new, s),
    "split": lambda sep, s: s.split(sep),
    "startswith": lambda s, prefix: s.startswith(prefix),
    "substr": _fn_substr,
    "sum": lambda xs: sum(to_number(x) for x in xs),
    "tolist": lambda xs: list(xs),
    "tonumber": lambda v: None if v is None else to_number(v),
    "toset": lambda xs: sorted(set(xs), key=str),
    "tostring": _fn_tostring,
    "trimspace": lambda s: s.strip(),
    "trimsuffix": lambda s, suffix: s[: -len(suffix)] if suffix and s.endswith(suffix) else s,
    "upper": lambda s: s.upper(),
    "values": lambda m: [m[k] for k in sorted(m)],
}

# Functions whose arguments are evaluated lazily.
_LAZY = {"try", "can"}


def _check_known(name: str, args: list) -> None:
    for a in args:
        if isinstance(a, Unknown):
            raise EvalError(f"{name}() of {a.path}, known only after apply")


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


class _Namespace:
    """Something that answers .attr (var, local, data.TYPE, a resource type...)."""

    def __init__(self, name: str, get: Callable[[str], Any]):
        self.name = name
        self._get = get

    def attr(self, key: str) -> Any:
        return self._get(key)


@dataclass
class _Instance:
    """One instance of a resource: configured arguments evaluate, the rest is Unknown."""

    evaluator: "Evaluator"
    block: Block
    index: int | str | None
    scope: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        t, n = self.block.labels
        if self.index is None:
            return f"{t}.{n}"
        return f"{t}.{n}[{self.index!r}]" if isinstance(self.index, str) else f"{t}.{n}[{self.index}]"

    def attr(self, key: str) -> Any:
        expr = self.block.attributes.get(key)
        if expr is not None and key not in ("count", "for_each", "depends_on", "provider"):
            return self.evaluator.expr(expr, dict(self.scope))
        return Unknown(f"{self.label}.{key}")


class Evaluator:
    """Evaluates a Config's expressions for given variables and a fake AWS world.

    world maps ("data_type", "name") to a function of the instance index (None
    without count) returning that data source's attributes.
    """

    def __init__(
        self,
        config: Config,
        variables: dict[str, Any],
        world: dict[tuple[str, str], Callable[[int | None], dict]] | None = None,
        path_module: str = ".",
    ):
        self.config = config
        self.world = world or {}
        self.path_module = path_module
        self._locals_src = config.locals
        self._locals: dict[str, Any] = {}
        self._locals_busy: set[str] = set()
        self._resources = config.resources
        self._data = config.data_sources
        self.variables = self._bind_variables(variables)

    # -- variables --------------------------------------------------------

    def _bind_variables(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.config.variables
        unknown = set(given) - set(declared)
        if unknown:
            raise EvalError(f"values for undeclared variables: {sorted(unknown)}")
        out = {}
        for name, block in declared.items():
            if name in given:
                out[name] = given[name]
            elif "default" in block.attributes:
                out[name] = self.expr(block.attributes["default"], {}, allow_vars=False)
            else:
                raise EvalError(f"variable {name} is required and was not given")
        return out

    # -- references ------------------------------------------------------

    def local(self, name: str) -> Any:
        if name in self._locals:
            return self._locals[name]
        if name not in self._locals_src:
            raise EvalError(f"reference to undeclared local.{name}")
        if name in self._locals_busy:
            raise EvalError(f"local.{name} refers to itself")
        self._locals_busy.add(name)
        try:
            value = self.expr(self._locals_src[name], {})
        finally:
            self._locals_busy.discard(name)
        self._locals[name] = value
        return value

    def count_of(self, block: Block) -> int | None:
        if "for_each" in block.attributes:
            raise EvalError(f"{block.address} uses for_each, not count: use instance_scopes()")
        if "count" not in block.attributes:
            return None
        return int(to_number(self.expr(block.attributes["count"], {})))

    def instance_scopes(self, block: Block) -> list[tuple[int | str | None, dict]] | None:
        """(key, scope) of every instance of a block with count or for_each, in
        Terraform's order (count index; for_each keys sorted); None without
        either. for_each keys must be known at plan time, as Terraform requires:
        a map key or set element known only after apply is an error."""
        if "for_each" in block.attributes:
            if "count" in block.attributes:
                raise EvalError(f"{block.address}: count and for_each together")
            items = self.expr(block.attributes["for_each"], {})
            if isinstance(items, Unknown):
                raise EvalError(f"{block.address}: for_each over {items.path}, known only after apply")
            if isinstance(items, dict):
                pairs = sorted(items.items())
            elif isinstance(items, list):
                if any(not isinstance(x, str) for x in items):
                    raise EvalError(f"{block.address}: for_each over a set needs strings known at plan time, got {items!r}")
                if len(set(items)) != len(items):
                    raise EvalError(f"{block.address}: for_each over a list with duplicates (a set would merge them)")
                pairs = sorted((x, x) for x in items)
            else:
                raise EvalError(f"{block.address}: for_each over {type(items).__name__}")
            out = []
            for k, v in pairs:
                if isinstance(k, Unknown) or "<known after apply" in str(k):
                    raise EvalError(f"{block.address}: for_each key {k} is known only after apply")
                out.append((k, {"each": {"key": k, "value": v}}))
            return out
        n = self.count_of(block)
        if n is None:
            return None
        return [(i, {"count": {"index": i}}) for i in range(n)]

    def _instances_of(self, block: Block) -> Any:
        scopes = self.instance_scopes(block)
        if scopes is None:
            return _Instance(self, block, None)
        if "for_each" in block.attributes:
            return {k: _Instance(self, block, k, scope) for k, scope in scopes}
        return [_Instance(self, block, k, scope) for k, scope in scopes]

    def resource(self, type_: str, name: str) -> Any:
        block = self._resources.get((type_, name))
        if block is None:
            raise EvalError(f"reference to undeclared resource {type_}.{name}")
        return self._instances_of(block)

    def data(self, type_: str, name: str) -> Any:
        block = self._data.get((type_, name))
        if block is None:
            raise EvalError(f"reference to undeclared data.{type_}.{name}")
        make = self.world.get((type_, name))
        if make is None:
            return self._instances_of(block)
        scopes = self.instance_scopes(block)
        if scopes is None:
            return make(None)
        if "for_each" in block.attributes:
            return {k: make(k) for k, _ in scopes}
        return [make(k) for k, _ in scopes]

    def _root(self, name: str, scope: dict) -> Any:
        if name in scope:
            return scope[name]
        if name == "var":
            return _Namespace("var", self._var)
        if name == "local":
            return _Namespace("local", self.local)
        if name == "data":
            return _Namespace("data", lambda t: _Namespace(f"data.{t}", lambda n: self.data(t, n)))
        if name == "path":
            return {"module": self.path_module, "root": self.path_module, "cwd": self.path_module}
        if name == "terraform":
            return {"workspace": "default"}
        if name == "count":
            raise EvalError("count.index outside a resource with count")
        if name == "each":
            raise EvalError("each.key/each.value outside a resource with for_each")
        if any(t == name for t, _ in self._resources):
            return _Namespace(name, lambda n: self.resource(name, n))
        raise EvalError(f"unknown reference {name!r}")

    def _var(self, name: str) -> Any:
        if name not in self.variables:
            raise EvalError(f"reference to undeclared var.{name}")
        return self.variables[name]

    # -- expressions --------------------------------------------------------

    def expr(self, node, scope: dict, allow_vars: bool = True) -> Any:
        if isinstance(node, Token):
            raise EvalError(f"unexpected token {node!r}")
        kind = node.data
        kids = _meaningful(node.children)
        method = getattr(self, f"_e_{kind}", None)
        if method is None:
            raise EvalError(f"unsupported expression: {kind}")
        return method(kids, scope)

    def _e_expr_term(self, kids, scope):
        if len(kids) == 3 and isinstance(kids[0], Token) and kids[0].type == "LPAR":
            return self.expr(kids[1], scope)
        if len(kids) != 1:
            raise EvalError("unexpected expr_term shape")
        k = kids[0]
        if isinstance(k, Tree) and k.data == "identifier":
            return self._root(str(k.children[0]), scope)
        return self.expr(k, scope)

    def _e_int_lit(self, kids, scope):
        return int(str(kids[0]))

    def _e_float_lit(self, kids, scope):
        return float(str(kids[0]))

    def _e_literal_value(self, kids, scope):
        return {"true": True, "false": False, "null": None}[str(kids[0])]

    def _e_identifier(self, kids, scope):
        return self._root(str(kids[0]), scope)

    def _e_string(self, kids, scope):
        parts = [k for k in kids if isinstance(k, Tree) and k.data == "string_part"]
        values = []
        for p in parts:
            c = p.children[0]
            if isinstance(c, Token):
                if c.type == "STRING_CHARS":
                    values.append(_unescape(str(c)))
                elif c.type == "ESCAPED_INTERPOLATION":
                    values.append(str(c)[1:])  # $${x} -> ${x}
                elif c.type == "ESCAPED_DIRECTIVE":
                    values.append(str(c)[1:])  # %%{x} -> %{x}
                else:
                    raise EvalError(f"unexpected string token {c.type}")
            elif c.data == "interpolation":
                inner = _meaningful(c.children)[1]
                values.append(self.expr(inner, scope))
            else:
                raise EvalError(f"template directive {c.data} is not supported by this evaluator")
        if len(values) == 1 and len(parts) == 1 and not isinstance(parts[0].children[0], Token):
            # "${x}" alone yields x itself, of any type, as in Terraform.
            return values[0]
        return "".join(to_string(v) for v in values)

    def _e_heredoc_template(self, kids, scope):
        text = str(kids[0])
        body = text.split("\n", 1)[1].rsplit("\n", 2)[0] + "\n"
        if "${" in body.replace("$${", "") or "%{" in body.replace("%%{", ""):
            raise EvalError("heredoc with interpolation is not supported by this evaluator")
        return body.replace("$${", "${").replace("%%{", "%{")

    def _e_heredoc_template_trim(self, kids, scope):
        body = self._e_heredoc_template(kids, scope)
        lines = body.split("\n")
        indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
        return "\n".join(l[indent:] for l in lines)

    def _e_tuple(self, kids, scope):
        return [self.expr(k, scope) for k in kids if isinstance(k, Tree)]

    def _e_object(self, kids, scope):
        out = {}
        for elem in kids:
            if not (isinstance(elem, Tree) and elem.data == "object_elem"):
                continue
            ek = _meaningful(elem.children)
            key_node = _meaningful(ek[0].children)[0]
            key = self._object_key(key_node, scope)
            out[key] = self.expr(ek[2], scope)
        return out

    def _object_key(self, node, scope) -> str:
        if isinstance(node, Tree) and node.data == "keyword":
            return str(node.children[0])
        if isinstance(node, Tree) and node.data == "expr_term":
            inner = _meaningful(node.children)
            if len(inner) == 1 and isinstance(inner[0], Tree) and inner[0].data == "identifier":
                return str(inner[0].children[0])  # bare identifier: a literal key
        return to_string(self.expr(node, scope))

    def _e_conditional(self, kids, scope):
        cond = to_bool(self.expr(kids[0], scope))
        exprs = [k for k in kids[1:] if isinstance(k, Tree)]
        return self.expr(exprs[0] if cond else exprs[1], scope)

    def _e_unary_op(self, kids, scope):
        op = str(kids[0])
        v = self.expr(kids[1], scope)
        if op == "-":
            return -to_number(v)
        if op == "!":
            return not to_bool(v)
        raise EvalError(f"unary {op}")

    def _e_binary_op(self, kids, scope):
        left = self.expr(kids[0], scope)
        term = _meaningful(kids[1].children)
        op = str(_meaningful(term[0].children)[0]) if isinstance(term[0], Tree) else str(term[0])
        right = self.expr(term[1], scope)
        if op in ("==", "!="):
            if isinstance(left, Unknown) or isinstance(right, Unknown):
                raise EvalError("comparison with a value known only after apply")
            eq = _plain(left) == _plain(right)
            return eq if op == "==" else not eq
        if op in ("&&", "||"):
            a, b = to_bool(left), to_bool(right)  # both sides evaluated, like Terraform
            return (a and b) if op == "&&" else (a or b)
        a, b = to_number(left), to_number(right)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise EvalError("division by zero")
            return a / b
        if op == "%":
            return a % b
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        if op == ">=":
            return a >= b
        raise EvalError(f"operator {op}")

    def _e_function_call(self, kids, scope):
        name = str(kids[0].children[0])
        args_node = next((k for k in kids if isinstance(k, Tree) and k.data == "arguments"), None)
        arg_nodes = [] if args_node is None else [a for a in _meaningful(args_node.children) if isinstance(a, Tree)]
        expand = args_node is not None and any(isinstance(a, Token) and a.type == "ELLIPSIS" for a in args_node.children)
        if name in _LAZY:
            return self._lazy_call(name, arg_nodes, scope)
        if name not in FUNCTIONS:
            raise EvalError(f"function {name}() is not supported by this evaluator")
        args = [self.expr(a, scope) for a in arg_nodes]
        if expand:
            if not isinstance(args[-1], list):
                raise EvalError(f"{name}(...): expansion of a non-list")
            args = args[:-1] + list(args[-1])
        if name not in ("concat", "jsonencode", "length", "merge", "contains", "compact", "flatten", "join", "format", "tolist", "distinct"):
            _check_known(name, args)
        try:
            return FUNCTIONS[name](*args)
        except EvalError:
            raise
        except Exception as e:  # a Python error inside a function is an HCL call error
            raise EvalError(f"{name}(): {e}") from e

    def _lazy_call(self, name, arg_nodes, scope):
        if name == "can":
            try:
                self.expr(arg_nodes[0], scope)
                return True
            except EvalError:
                return False
        for a in arg_nodes:  # try
            try:
                return self.expr(a, scope)
            except EvalError:
                continue
        raise EvalError("try(): no argument could be evaluated")

    def _e_get_attr_expr_term(self, kids, scope):
        base = self.expr(kids[0], scope)
        key = _name_of(_meaningful(kids[1].children)[1])
        return _get_attr(base, key)

    def _e_index_expr_term(self, kids, scope):
        base = self.expr(kids[0], scope)
        idx_node = kids[1]
        ik = _meaningful(idx_node.children)
        if idx_node.data == "short_index":
            key = int(str(ik[1]))
        else:
            key = self.expr(ik[1], scope)
        if isinstance(base, list):
            i = int(to_number(key))
            if not 0 <= i < len(base):
                raise EvalError(f"index {i} out of range (length {len(base)})")
            return base[i]
        if isinstance(base, dict):
            k = to_string(key)
            if k not in base:
                raise EvalError(f"no key {k!r}")
            return base[k]
        if isinstance(base, Unknown):
            return Unknown(f"{base.path}[{key}]")
        raise EvalError(f"cannot index {type(base).__name__}")

    def _e_attr_splat_expr_term(self, kids, scope):
        return self._splat(kids, scope)

    def _e_full_splat_expr_term(self, kids, scope):
        return self._splat(kids, scope)

    def _splat(self, kids, scope):
        base = self.expr(kids[0], scope)
        items = base if isinstance(base, list) else ([] if base is None else [base])
        out = []
        for item in items:
            v = item
            for part in _meaningful(kids[1].children)[1:]:
                if part.data == "get_attr":
                    v = _get_attr(v, _name_of(_meaningful(part.children)[1]))
                else:
                    raise EvalError("index inside a splat is not supported by this evaluator")
            out.append(v)
        return out

    def _for_items(self, kids, scope):
        intro = _meaningful(kids[1].children)
        names = [str(n.children[0]) for n in intro if isinstance(n, Tree) and n.data == "identifier"]
        coll_node = [n for n in intro if isinstance(n, Tree) and n.data != "identifier"][0]
        coll = self.expr(coll_node, scope)
        if isinstance(coll, Unknown):
            raise EvalError(f"for-expression over {coll.path}, known only after apply")
        if isinstance(coll, dict):
            pairs = list(sorted(coll.items()))
        elif isinstance(coll, list):
            pairs = list(enumerate(coll))
        else:
            raise EvalError(f"for-expression over {type(coll).__name__}")
        cond = next((k for k in kids if isinstance(k, Tree) and k.data == "for_cond"), None)
        for k, v in pairs:
            inner = dict(scope)
            if len(names) == 1:
                inner[names[0]] = v
            else:
                inner[names[0]], inner[names[1]] = k, v
            if cond is not None and not to_bool(self.expr(_meaningful(cond.children)[1], inner)):
                continue
            yield inner

    def _e_for_tuple_expr(self, kids, scope):
        body = [k for k in kids if isinstance(k, Tree) and k.data not in ("for_intro", "for_cond")][0]
        return [self.expr(body, inner) for inner in self._for_items(kids, scope)]

    def _e_for_object_expr(self, kids, scope):
        exprs = [k for k in kids if isinstance(k, Tree) and k.data not in ("for_intro", "for_cond")]
        group = any(isinstance(k, Token) and k.type == "ELLIPSIS" for k in kids)
        out: dict = {}
        for inner in self._for_items(kids, scope):
            key = to_string(self.expr(exprs[0], inner))
            val = self.expr(exprs[1], inner)
            if group:
                out.setdefault(key, []).append(val)
            elif key in out:
                raise EvalError(f"duplicate key {key!r} in for-expression")
            else:
                out[key] = val
        return out

    # -- blocks ----------------------------------------------------------------

    def block(self, block: Block, scope: dict | None = None) -> dict:
        """A block's arguments and nested blocks as a dict; nested blocks become
        lists under their type, dynamic blocks are expanded."""
        scope = dict(scope or {})
        out: dict[str, Any] = {}
        for name, expr in block.attributes.items():
            if name in ("count", "for_each", "depends_on", "provider", "providers", "source", "version"):
                continue
            out[name] = self.expr(expr, scope)
        for sub in block.blocks:
            if sub.type == "lifecycle":
                continue
            if sub.type == "dynamic":
                kind = sub.labels[0]
                iterator = kind
                if "iterator" in sub.attributes:
                    iterator = _name_of(_meaningful(sub.attributes["iterator"].children)[0])
                items = self.expr(sub.attributes["for_each"], scope)
                pairs = sorted(items.items()) if isinstance(items, dict) else list(enumerate(items))
                content = sub.blocks_of("content")[0]
                for k, v in pairs:
                    inner = dict(scope)
                    inner[iterator] = {"key": k, "value": v}
                    out.setdefault(kind, []).append(self.block(content, inner))
            else:
                out.setdefault(sub.type, []).append(self.block(sub, scope))
        return out

    def instances(self, type_: str, name: str) -> list[dict]:
        """Every instance of a resource, evaluated (count.index or each.* bound),
        in Terraform's order."""
        return list(self.instances_by_key(type_, name).values())

    def instances_by_key(self, type_: str, name: str) -> dict:
        """The instances of a resource by their key: None for a single
        instance, the index with count, the key with for_each."""
        return self._evaluate_instances(self._resources[(type_, name)])

    def data_instances(self, type_: str, name: str) -> list[dict]:
        return list(self._evaluate_instances(self._data[(type_, name)]).values())

    def _evaluate_instances(self, block: Block) -> dict:
        scopes = self.instance_scopes(block)
        if scopes is None:
            return {None: self.block(block)}
        return {k: self.block(block, scope) for k, scope in scopes}


class _Constants(Evaluator):
    """Evaluates expressions that refer to nothing."""

    def __init__(self):  # noqa: D401 - no configuration needed
        self.world, self.path_module, self._resources, self._data = {}, ".", {}, {}
        self._locals_src, self._locals, self._locals_busy, self.variables = {}, {}, set(), {}

    def _root(self, name: str, scope: dict) -> Any:
        if name in scope:
            return scope[name]
        raise EvalError(f"{name!r}: a constant was expected here")


def literal(node) -> Any:
    """Value of an expression without references (descriptions, versions, sources)."""
    return _Constants().expr(node, {})


def _get_attr(base: Any, key: str) -> Any:
    if isinstance(base, (_Namespace, _Instance)):
        return base.attr(key)
    if isinstance(base, dict):
        if key not in base:
            raise EvalError(f"object has no attribute {key!r}")
        return base[key]
    if isinstance(base, Unknown):
        return Unknown(f"{base.path}.{key}")
    if isinstance(base, list):
        raise EvalError(f"attribute {key!r} of a list (missing [index] or [*]?)")
    raise EvalError(f"attribute {key!r} of {type(base).__name__}")


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            if n in "uU":
                width = 4 if n == "u" else 8
                out.append(chr(int(s[i + 2 : i + 2 + width], 16)))
                i += 2 + width
                continue
            raise EvalError(f"unknown escape \\{n}")
        out.append(c)
        i += 1
    return "".join(out)

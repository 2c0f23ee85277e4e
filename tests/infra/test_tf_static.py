"""Static checks of every Terraform configuration under infra/: it parses, it
is laid out as `terraform fmt` would lay it out, its variables are typed,
described, validated (by conditions on the variable itself) and used, every
reference points at something declared, the module README's Inputs and
Outputs tables are exactly what tfdocs.py generates from the code, and nothing
needs a Terraform newer than 1.5."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

import tfdocs
import tfeval
import tffmt
from tfsupport import INFRA, MODULE, tf_dirs, tf_files

# Terraform features newer than the required 1.5: functions added in 1.8-1.10
# (provider functions are called as provider::name::fn and fail to parse as a
# plain call below).
POST_1_5_FUNCTIONS = {"templatestring", "issensitive", "ephemeralasnull"}

META_ROOTS = {"count", "each", "path", "self", "terraform"}


def rel(p: Path) -> str:
    return str(p.relative_to(INFRA.parent))


@pytest.mark.parametrize("path", tf_files(), ids=rel)
def test_parses(path):
    with path.open() as f:
        doc = hcl2.load(f)
    assert isinstance(doc, dict) and doc, f"{rel(path)} parsed to nothing"
    assert tfeval.parse_file(path), f"{rel(path)} has no blocks"


@pytest.fixture(params=tf_dirs(), ids=rel, scope="module")
def config(request) -> tfeval.Config:
    return tfeval.load_config(request.param)


def _type_name(block: tfeval.Block) -> str | None:
    expr = block.attributes.get("type")
    if expr is None:
        return None
    kids = [c for c in expr.children if not isinstance(c, str) or c.strip()]
    if expr.data == "expr_term" and len(kids) == 1 and getattr(kids[0], "data", None) == "identifier":
        return str(kids[0].children[0])
    return "complex"


def test_variables_are_typed_described_and_validated(config):
    problems = []
    for name, block in config.variables.items():
        where = f"{rel(block.file)}: variable {name}"
        type_ = _type_name(block)
        if type_ is None:
            problems.append(f"{where} has no type")
        desc = block.attributes.get("description")
        if desc is None or len(tfeval.literal(desc).strip()) < 20:
            problems.append(f"{where} needs a description (a sentence, not a word)")
        validations = block.blocks_of("validation")
        # A bool cannot hold a bad value; every other type can.
        if type_ != "bool" and not validations:
            problems.append(f"{where} ({type_}) has no validation block")
        for v in validations:
            if "condition" not in v.attributes or "error_message" not in v.attributes:
                problems.append(f"{where}: validation needs condition and error_message")
                continue
            refs = {r[:2] for r in tfeval.references(v.attributes["condition"]) if r[0] == "var"}
            if refs != {("var", name)}:
                problems.append(f"{where}: a validation may refer only to its own variable before Terraform 1.9 ({sorted(refs)})")
            msg = tfeval.literal(v.attributes["error_message"])
            if name not in msg or not msg[0].isupper() or msg[-1] not in ".?":
                problems.append(f"{where}: error_message must be a sentence (capital, final period) naming {name}")
    assert not problems, "\n".join(problems)


def _all_refs(config: tfeval.Config, skip: tfeval.Block | None = None) -> set[tuple[str, ...]]:
    refs: set[tuple[str, ...]] = set()
    for block in config.blocks:
        if block is skip:
            continue
        refs |= tfeval.block_references(block)
    return refs


def test_every_variable_is_used(config):
    unused = []
    for name, block in config.variables.items():
        if ("var", name) not in {r[:2] for r in _all_refs(config, skip=block)}:
            unused.append(name)
    assert not unused, f"{rel(config.directory)}: variables nothing refers to: {unused}"


def test_every_local_and_data_source_is_used(config):
    refs = {r[:3] for r in _all_refs(config)} | {r[:2] for r in _all_refs(config)}
    unused = [f"local.{n}" for n in config.locals if ("local", n) not in refs]
    unused += [f"data.{t}.{n}" for t, n in config.data_sources if ("data", t, n) not in refs]
    assert not unused, f"{rel(config.directory)}: declared but never used: {unused}"


def test_every_reference_resolves(config):
    declared_resources = set(config.resources)
    problems = []
    for block in config.blocks:
        for ref in tfeval.block_references(block):
            root = ref[0]
            where = f"{rel(block.file)}:{block.line} {block.address}"
            if root == "var" and ref[1] not in config.variables:
                problems.append(f"{where}: var.{ref[1]} is not declared")
            elif root == "local" and ref[1] not in config.locals:
                problems.append(f"{where}: local.{ref[1]} is not declared")
            elif root == "data" and len(ref) >= 3 and (ref[1], ref[2]) not in config.data_sources:
                problems.append(f"{where}: data.{ref[1]}.{ref[2]} is not declared")
            elif root == "module" and ref[1] not in config.module_calls:
                problems.append(f"{where}: module.{ref[1]} is not declared")
            elif (root.startswith("aws_") or root == "terraform_data") and (root, ref[1]) not in declared_resources:
                problems.append(f"{where}: resource {root}.{ref[1]} is not declared")
    assert not problems, "\n".join(problems)


def test_outputs_are_described_and_refer_to_declared_things(config):
    problems = []
    for name, block in config.outputs.items():
        desc = block.attributes.get("description")
        if desc is None or len(tfeval.literal(desc).strip()) < 15:
            problems.append(f"output {name} needs a description")
        refs = tfeval.block_references(block)
        if not refs:
            problems.append(f"output {name} refers to nothing")
        for ref in refs:
            if ref[0] in META_ROOTS:
                problems.append(f"output {name} uses {ref[0]}.*")
            if ref[0].startswith("aws_") and (ref[0], ref[1]) not in config.resources:
                problems.append(f"output {name} refers to undeclared {ref[0]}.{ref[1]}")
    assert not problems, "\n".join(problems)


def test_nothing_newer_than_terraform_1_5(config):
    used = set()
    for path in config.files:
        tree = hcl2.parses_to_tree(path.read_text())
        for node in tree.iter_subtrees():
            if node.data == "function_call":
                used.add(str(node.children[0].children[0]))
                assert not any(getattr(c, "type", None) == "COLONS" for c in node.children), (
                    f"{rel(path)}: provider-defined functions need Terraform 1.8"
                )
    assert not used & POST_1_5_FUNCTIONS, f"{rel(config.directory)}: {sorted(used & POST_1_5_FUNCTIONS)} need Terraform > 1.5"


def test_module_requires_terraform_1_5_and_aws_5():
    cfg = tfeval.load_config(MODULE)
    (terraform,) = cfg.top("terraform")
    assert tfeval.literal(terraform.attributes["required_version"]) == ">= 1.5.0"
    (providers,) = terraform.blocks_of("required_providers")
    aws = tfeval.literal(providers.attributes["aws"])
    assert aws["source"] == "hashicorp/aws"
    m = re.fullmatch(r">= (\d+)\.(\d+)\.(\d+)", aws["version"])
    assert m and int(m.group(1)) == 5, f"aws provider constraint must be a 5.x lower bound, got {aws['version']!r}"


def test_example_module_sources_exist():
    for d in tf_dirs():
        for name, block in tfeval.load_config(d).module_calls.items():
            source = tfeval.literal(block.attributes["source"])
            if source.startswith("."):
                assert (d / source).resolve().is_dir(), f"{rel(d)}: module {name} source {source} does not exist"
                assert "version" not in block.attributes, f"{rel(d)}: a local module takes no version"
            else:
                assert "version" in block.attributes, f"{rel(d)}: registry module {name} must pin a version"


def test_readme_tables_are_generated_from_the_code():
    """Inputs (name, description, type, default) and Outputs (name,
    description): regenerate with `python tests/infra/tfdocs.py --write`."""
    cfg = tfeval.load_config(MODULE)
    current = (MODULE / "README.md").read_text()
    wanted = tfdocs.render(current, cfg)
    assert current == wanted, "README tables differ from variables.tf/outputs.tf: run `.venv-infra/bin/python tests/infra/tfdocs.py --write`"
    rows = set(re.findall(r"^\| `([a-z0-9_]+)` \|", current, re.M))
    assert set(cfg.variables) | set(cfg.outputs) <= rows


def test_readme_table_generator_sees_a_drifted_row():
    cfg = tfeval.load_config(MODULE)
    current = (MODULE / "README.md").read_text()
    drifted = current.replace("| `max_sources` | Per-invocation cap", "| `max_sources` | Cap", 1)
    assert drifted != current and tfdocs.render(drifted, cfg) == current


@pytest.mark.parametrize("path", tf_files(), ids=rel)
def test_formatted_as_terraform_fmt_would(path):
    problems = tffmt.check_file(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text,complaint",
    [
        # The slip of the old environment map: one key longer than the others.
        ('x = {\n  A    = 1\n  BBBB = 2\n  CCCCCC = 3\n}\n', "aligns it"),
        ('resource "a" "b" {\n  name = "x"\n   tags = {}\n}\n', "indents 2"),
        ('locals {\n  a  = 1\n}\n', "aligns it"),
        ('locals {\n  a = f(x,  y)\n}\n', "several spaces"),
        ('locals {\n  a = 1 \n}\n', "trailing whitespace"),
        ('locals {\n  a = 1\n}', "newline"),
        ('locals {\n  aa = 1 # one\n  b = 2  # two\n}\n', "aligns it"),
    ],
)
def test_formatter_check_catches(text, complaint):
    assert any(complaint in p for p in tffmt.problems(text)), tffmt.problems(text)


def test_formatter_check_accepts_fmt_output():
    text = """resource "aws_instance" "web" {
  ami           = "ami-123" # comment
  instance_type = "t3.micro"
  tags = {
    Name = "web-${var.env}"
  }
  user   = { a = 1, b = [1, 2] }
  x      = var.a == "b" ? 1 : 2
  values = [for k, v in var.m : "${k}=${v}" if v != ""]
}
"""
    assert tffmt.problems(text) == []


def test_validations_refer_to_their_own_variable_only(config):
    """Terraform before 1.9 rejects a validation condition that refers to
    anything but the variable it validates."""
    problems = []
    for name, block in config.variables.items():
        for v in block.blocks_of("validation"):
            refs = tfeval.references(v.attributes["condition"])
            foreign = sorted({".".join(r[:2]) for r in refs if r[:2] != ("var", name) and r[0] in ("var", "local", "data", "module")})
            foreign += sorted({".".join(r[:2]) for r in refs if r[0].startswith("aws_")})
            if foreign:
                problems.append(f"{rel(block.file)}: variable {name}: its validation refers to {foreign}")
    assert not problems, "\n".join(problems)


def test_checkov_skips_carry_reasons():
    problems = []
    for path in tf_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            m = re.search(r"#checkov:skip=(CKV2?_(?:AWS|TF)_\d+):(.*)$", line)
            if not m or len(m.group(2).strip()) < 40:
                problems.append(f"{rel(path)}:{n}: a skip needs `#checkov:skip=ID:reason` with a real reason")
    assert not problems, "\n".join(problems)

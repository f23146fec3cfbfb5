"""Hash sites in Nix files: locating them in the syntax tree, new platform entries, per-platform splits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.errors import HashError, UsageError
from fodhash.hashes.encoding import Algo, Hash, parse_hash
from fodhash.sites.read import read_nix_file
from fodhash.sites.site import FAKE_NAMES, HASH_NAME, NOT_FOD_HASH, SYSTEM, SYSTEM_KEY, Site
from fodhash.sites.syntax import judge, parse, unparenthesized

if TYPE_CHECKING:
    import tree_sitter

# importCargoLock's `outputHashes` (also `cargoLock.outputHashes` of buildRustPackage): every
# entry, "NAME-VERSION" = "sha256-...", is the hash of one git dependency's FOD.
_ENTRY_MAPS = {"outputHashes"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")
_KEYWORDS = {"assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"}


def _attr_name(node: tree_sitter.Node) -> str:
    text = node.text.decode() if node.text else ""
    if node.type == "string_expression":
        return text[1:-1]
    return text


def _attrpath(binding: tree_sitter.Node) -> list[str]:
    path = binding.child_by_field_name("attrpath")
    assert path is not None
    return [_attr_name(a) for a in path.children_by_field_name("attr")]


def _enclosing_path(node: tree_sitter.Node) -> list[str]:
    parts: list[str] = []
    parent = node.parent
    while parent is not None:
        if parent.type == "binding":
            parts = _attrpath(parent) + parts
        parent = parent.parent
    return parts


def _algo_hint(name: str, binding: tree_sitter.Node) -> Algo | None:
    lowered = name.lower()
    for algo in (Algo.SHA512, Algo.SHA256, Algo.SHA1, Algo.MD5):
        if lowered.endswith(str(algo)):
            return algo
    # outputHash next to outputHashAlgo = "sha512"; in the same binding set.
    siblings = binding.parent
    if siblings is not None:
        for sibling in siblings.children_by_field_name("binding"):
            if sibling.type == "binding" and _attrpath(sibling)[-1:] == [f"{name}Algo"]:
                value = sibling.child_by_field_name("expression")
                if value is not None and value.type == "string_expression":
                    try:
                        return Algo(_attr_name(value))
                    except ValueError:
                        return None
    return None


def _placeholder_algo(expr: tree_sitter.Node) -> Algo | None:
    """lib.fakeHash, pkgs.lib.fakeSha256, fakeSha512 (under `with lib`), or ""."""
    if expr.type == "string_expression":
        return Algo.SHA256 if expr.text == b'""' else None
    if expr.type == "select_expression" and expr.child_by_field_name("default") is None:
        path = expr.child_by_field_name("attrpath")
        last = path.children_by_field_name("attr")[-1] if path is not None else None
        return FAKE_NAMES.get(_attr_name(last)) if last is not None else None
    if expr.type == "variable_expression":
        return FAKE_NAMES.get(_attr_name(expr))
    return None


def _system_map(binding: tree_sitter.Node) -> bool:
    """`binding` is an entry of an attrset whose keys are Nix systems (item 3 of the
    shapes: `hashes = { x86_64-linux = "…"; aarch64-darwin = "…"; }` under any name, or
    passed to a function, `mkElectron "11.5.0" { x86_64-linux = "…"; … }`). A few other
    keys may sit beside two or more systems if they hold hash literals too (electron's
    `headers = "…";`, a download every platform shares): they are no platform's entry. A map
    of names to hashes with one system-like key among them (`{ foo-bar = …; }`) is none."""
    siblings = binding.parent
    if siblings is None or siblings.type != "binding_set":
        return False
    entries = [b for b in siblings.named_children if b.type != "comment"]
    if not all(b.type == "binding" and len(_attrpath(b)) == 1 for b in entries):
        return False

    def literal(entry: tree_sitter.Node) -> bool:
        value = entry.child_by_field_name("expression")
        return (value is not None and _placeholder_algo(value) is None
                and _leaf(Path(), value, "", "", None, None) is not None)

    systems = [b for b in entries if SYSTEM.match(_attrpath(b)[0])]
    others = [b for b in entries if not SYSTEM.match(_attrpath(b)[0])]
    if others and (len(systems) < 2 or len(others) >= len(systems)
                   or not all(literal(b) for b in others)):
        return False
    # It maps systems to hashes if one entry is a hash literal; others may be placeholders.
    return any(literal(b) for b in systems)


def _function_name(binding: tree_sitter.Node) -> str | None:
    """For an entry of an attrset passed to a function (`mkElectron "11.5.0" { … }`), the
    function's name, which names the map where no binding does; None otherwise."""
    argument = binding.parent.parent if binding.parent is not None else None
    call = argument.parent if argument is not None else None
    if call is None or call.type != "apply_expression" or \
            call.child_by_field_name("argument") != argument:
        return None
    function = call.child_by_field_name("function")
    while function is not None and function.type == "apply_expression":
        function = function.child_by_field_name("function")
    if function is None or function.type not in ("variable_expression", "select_expression"):
        return None
    return (function.text or b"").decode() or None


def _entry_key(key: str) -> str:
    """An entry's key as an attribute path writes it: quoted unless a plain identifier."""
    return key if _IDENTIFIER.match(key) and key not in _KEYWORDS else f'"{key}"'


def _site(file: Path, binding: tree_sitter.Node) -> Site | None:
    own = _attrpath(binding)
    outer = _enclosing_path(binding)
    name, platform = own[-1], None
    if name in FAKE_NAMES or (name in NOT_FOD_HASH and not _given_to_fetch_tree(binding)):
        return None  # the definition of a placeholder (lib.fakeHash = ...), not a site
    # An entry of outputHashes: its key names a dependency, its literal tells the algorithm.
    entry = len(outer + own) > 1 and (outer + own)[-2] in _ENTRY_MAPS
    if not entry and not HASH_NAME.search(name):
        # An entry of a system-keyed attrset inside a hash binding (shape 2), or of a map of
        # systems under any name (`hashes.${system}`), if it holds a hash (see _leaf).
        hash_outer = [i for i, part in enumerate(outer) if HASH_NAME.search(part)]
        if SYSTEM_KEY.match(name) and hash_outer and len(own) == 1:
            name = outer[hash_outer[-1]]
        elif SYSTEM.match(name) and len(own) == 1 and _system_map(binding):
            if not outer:  # passed to a function, bound to no name: named after the function
                function = _function_name(binding)
                if function is None:
                    return None
                outer = [function]
            name = outer[-1]
        else:
            return None
        platform = own[0]
    expr = binding.child_by_field_name("expression")
    if expr is None:
        return None
    algo_binding = binding
    if platform is not None:  # the algorithm lives next to the enclosing hash binding
        parent = binding.parent
        while parent is not None and not (
            parent.type == "binding" and _attrpath(parent)[-1:] == [name]
        ):
            parent = parent.parent
        algo_binding = parent or binding
    hint = None if entry else _algo_hint(name, algo_binding)
    attrpath = ".".join(outer + own)
    binding_path = ".".join(outer + own[:-1]) if platform or entry else attrpath
    if entry:
        attrpath = ".".join([*outer, *own[:-1], _entry_key(name)])
    return _leaf(file, expr, attrpath, binding_path, platform, hint)


def _leaf(file: Path, expr: tree_sitter.Node, attrpath: str, binding_path: str,
          platform: str | None, hint: Algo | None, branch: str | None = None) -> Site | None:
    """The site of `expr` if it is a hash literal or a placeholder; None otherwise."""
    line = expr.start_point[0] + 1
    placeholder = _placeholder_algo(expr)
    if placeholder is not None:
        return Site(file, attrpath, binding_path, platform, line, expr.start_byte,
                    expr.end_byte, expr.text.decode() if expr.text else "",
                    hint or placeholder, None, branch=branch)
    if expr.type not in ("string_expression", "indented_string_expression"):
        return None
    fragments = [c for c in expr.children if c.type not in {'"', "''"}]
    if len(fragments) != 1 or fragments[0].type != "string_fragment":
        return None  # interpolated or escaped: not a literal hash
    fragment = fragments[0]
    text = fragment.text.decode() if fragment.text else ""
    try:
        form = parse_hash(text, hint) if hint else parse_hash(text)
    except HashError:
        return None
    return Site(file, attrpath, binding_path, platform, line, fragment.start_byte,
                fragment.end_byte, text, form.hash.algo, form, branch=branch)


def _branch_sites(file: Path, binding: tree_sitter.Node) -> list[Site]:
    """The literals of `hash = if COND then "…" else "…";` (nested `if`s too): one site per
    branch, when every branch is a hash literal or a placeholder and one is a literal. A
    condition that picks anything else (`if hash != "" then hash else …`, in a fetcher's own
    definition) is logic, not a choice of hash, and gives no site."""
    own = _attrpath(binding)
    name = own[-1]
    expr = binding.child_by_field_name("expression")
    if expr is None or not HASH_NAME.search(name) or name in {*FAKE_NAMES, *NOT_FOD_HASH}:
        return []
    expr = unparenthesized(expr)
    if expr.type != "if_expression":
        return []
    attrpath = ".".join(_enclosing_path(binding) + own)
    hint = _algo_hint(name, binding)
    leaves: list[tuple[tree_sitter.Node, list[str]]] = []
    todo: list[tuple[tree_sitter.Node, list[str]]] = [(expr, [])]
    while todo:
        node, conditions = todo.pop()
        node = unparenthesized(node)
        if node.type != "if_expression":
            leaves.append((node, conditions))
            continue
        condition = node.child_by_field_name("condition")
        then, other = node.child_by_field_name("consequence"), node.child_by_field_name("alternative")
        if condition is None or then is None or other is None:
            return []
        # The condition's text, whitespace runs made one.
        text = " ".join((unparenthesized(condition).text or b"").decode().split())
        negated = text[1:] if text.startswith("!") and " " not in text else \
            f"!{text}" if " " not in text else f"!({text})"
        todo += [(other, [*conditions, negated]), (then, [*conditions, text])]
    sites = []
    for node, conditions in leaves:
        if _throws(node):
            continue  # `else throw "unsupported system"`: no hash to choose
        label = " && ".join(conditions)
        site = _leaf(file, node, f"{attrpath}[{label}]", attrpath, None, hint, branch=label)
        if site is None:
            return []
        sites.append(site)
    return sites if any(not s.is_placeholder for s in sites) else []


def _throws(node: tree_sitter.Node) -> bool:
    """`throw "…"`, `abort "…"`, `builtins.throw …`: a branch that fails evaluation."""
    function = node.child_by_field_name("function") if node.type == "apply_expression" else None
    name = (function.text or b"").decode() if function is not None else ""
    return name in ("throw", "abort", "builtins.throw", "builtins.abort")


def _given_to_fetch_tree(binding: tree_sitter.Node) -> bool:
    """`binding` (a `narHash`) is in the attribute set given to `builtins.fetchGit` or
    `builtins.fetchTree`: a pin Nix verifies at evaluation (docs/design.md, "Pins"), unlike a
    `narHash` anywhere else (a flake input's record, a tree's description)."""
    node = binding.parent.parent if binding.parent is not None else None
    while node is not None and node.parent is not None \
            and node.parent.type == "parenthesized_expression":
        node = node.parent
    apply = node.parent if node is not None and node.type == "attrset_expression" else None
    function = apply.child_by_field_name("function") if apply is not None \
        and apply.type == "apply_expression" else None
    name = function.text.decode() if function is not None and function.text else ""
    return name.rsplit(".", 1)[-1] in {"fetchGit", "fetchTree"}


def _in_fetcher(node: tree_sitter.Node) -> bool:
    """`node` lies in a function that takes a hash as an argument (`{ hash ? "", ... }:`,
    `sha256:`): the definition of a fetcher or builder, whose own placeholders (the
    `outputHash = "";` of an unknown hash) are its logic, not a hash to resolve."""
    parent = node.parent
    while parent is not None:
        if parent.type == "function_expression":
            names = [parent.child_by_field_name("universal")]
            formals = parent.child_by_field_name("formals")
            if formals is not None:
                names += [f.child_by_field_name("name")
                          for f in formals.children_by_field_name("formal")]
            if any(n is not None and n.text and HASH_NAME.search(n.text.decode())
                   for n in names):
                return True
        parent = parent.parent
    return False


def locate_in_bytes(file: Path, source: bytes) -> list[Site]:
    """Every hash site in `source`, in file order.

    Nix judges the syntax (see fodhash.sites.syntax): a file Nix rejects raises a UsageError with
    Nix's message; in a file Nix accepts but the grammar reads only in part, the sites of
    the sound part of the tree are found and nothing inside an unreadable stretch is.
    """
    tree = parse(source)
    judge(file, source, tree)
    sites: list[Site] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            continue
        if node.type == "binding" and not node.has_error:
            found = [site] if (site := _site(file, node)) else _branch_sites(file, node)
            found = [s for s in found if not (s.is_placeholder and _in_fetcher(node))]
            if found:
                sites += found
                continue
        stack.extend(reversed(node.children))
    return sorted(sites, key=lambda s: s.start)


def locate(file: Path) -> list[Site]:
    return locate_in_bytes(file, read_nix_file(file))


def platform_slot(source: bytes, sites: list[Site], platform: str) -> Site | None:
    """An insertion point for `platform` in the system-keyed attrset holding `sites`.

    The new entry copies its neighbours' style: the indentation and key quoting of the last
    entry, placed in alphabetical order when the entries are sorted, else at the end.
    None if the sites are not entries of one system-keyed attrset.
    """
    entries = [s for s in sites if s.platform is not None]
    if not entries or len({(s.file, s.binding) for s in entries}) != 1:
        return None
    tree = parse(source)
    first = tree.root_node.descendant_for_byte_range(entries[0].start, entries[0].end)
    while first is not None and first.type != "binding_set":
        first = first.parent
    if first is None:
        return None
    bindings = [b for b in first.children_by_field_name("binding") if b.type == "binding"]
    keys = [_attrpath(b)[0] for b in bindings]
    after = bindings[-1]
    before = next((b for b, k in zip(bindings, keys, strict=True) if k > platform), None)
    if keys != sorted(keys):
        before = None  # no order to keep: append
    line_start = source.rfind(b"\n", 0, after.start_byte) + 1
    indent = source[line_start:after.start_byte].decode()
    if indent.strip():  # entries share a line: separate with one space
        indent = " "
        newline = ""
    else:
        newline = "\n"
    attrpath = after.child_by_field_name("attrpath")
    quoted = attrpath is not None and attrpath.text is not None and attrpath.text.startswith(b'"')
    key = f'"{platform}"' if quoted else platform
    template = entries[0]
    position = after.end_byte
    end_of_line = source.find(b"\n", position)
    rest = source[position:end_of_line if end_of_line >= 0 else len(source)].strip()
    if newline and (not rest or rest.startswith(b"#")):
        position = end_of_line  # after a trailing comment, which stays with its own entry
    wrap = (f'{newline}{indent}{key} = "', '";')
    if before is not None:  # sorted keys: the new line goes in front of the first greater one
        start_of_before = source.rfind(b"\n", 0, before.start_byte) + 1
        if newline and not source[start_of_before:before.start_byte].strip():
            position = start_of_before
            wrap = (f'{indent}{key} = "', f'";{newline}')
        else:
            position = before.start_byte
            wrap = (f'{key} = "', '"; ')
    line = source.count(b"\n", 0, position) + (2 if before is None and newline else 1)
    return Site(
        file=template.file,
        attrpath=f"{template.binding}.{platform}",
        binding=template.binding,
        platform=platform,
        line=line,
        start=position,
        end=position,
        text="",
        algo=template.algo,
        form=None,
        wrap=wrap,
        style=next((s.form for s in entries if s.form is not None), None),
    )


def system_expression(source: bytes) -> str | None:
    """The expression this file already uses for the host system, to select a new
    per-platform attrset with: the one an existing `{ ... }.${EXPR}` selects with, else
    `....hostPlatform.system`, else `....system`, else a `system` argument."""
    tree = parse(source)
    found: dict[int, str] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        text = node.text.decode() if node.text else ""
        if node.type == "interpolation" and node.parent is not None \
                and node.parent.type == "attrpath" and node.parent.parent is not None \
                and node.parent.parent.type == "select_expression":
            inner = node.child_by_field_name("expression")
            if inner is not None and inner.text:
                found.setdefault(0, inner.text.decode())
        elif node.type == "select_expression" and text.endswith("hostPlatform.system"):
            found.setdefault(1, text)
        elif node.type == "select_expression" and text.endswith(".system"):
            found.setdefault(2, text)
        elif node.type == "formal" and text.split("?")[0].strip() == "system":
            found.setdefault(3, "system")
    return found[min(found)] if found else None


def split_text(source: bytes, site: Site, hashes: dict[str, Hash], selector: str,
               name: str) -> tuple[tuple[int, int], str]:
    """The edit that turns a plain hash literal into a per-platform attrset, selected by
    `selector`, with a throwing default that names the FOD (fixtures/example/webui-deps.nix)."""
    node = parse(source).root_node.descendant_for_byte_range(site.start, site.end)
    while node is not None and node.type not in ("string_expression", "indented_string_expression"):
        node = node.parent
    if node is None:
        raise UsageError(f"{site}: not a string literal; only a literal hash can be split")
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    line = source[line_start:node.start_byte].decode()
    base = line[: len(line) - len(line.lstrip())]
    start = node.start_byte
    while start > 0 and source[start - 1:start] in (b" ", b"\t"):
        start -= 1  # the attrset starts on its own line: no blank left after `=`
    entries = "".join(f'{base}    {system} = "{value.sri}";\n'
                      for system, value in sorted(hashes.items()))
    text = (f"\n{base}  {{\n{entries}{base}  }}\n{base}  .${{{selector}}}\n"
            f'{base}    or (throw "{name}: no hash for ${{{selector}}}")')
    return (start, node.end_byte), text

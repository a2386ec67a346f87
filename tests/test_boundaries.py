"""The import boundaries of `app/`, read from the source with `ast` (no import runs):

- no import cycle: each feature (`app.features.<name>`, all its modules) is one node, every other
  module of `app` its own node (so `app.jobs.*` and `app.cron.*` are checked module by module), and
  the graph of their imports must be acyclic;
- the job kernel (`app.jobs`) never imports `app.cron`: cron sits on the kernel, not beside it;
- no import inside a function, except in `app/__init__.py` (the application factory, which wires
  every feature's blueprints only when a web app or the CLI is built, so that a worker or `cron.py`
  importing `app.db` does not load the whole web stack);
- services speak the domain: `ApiError` only in HTTP modules (`*views.py`, `app/api.py`), and no
  service module builds a `{"success": …}` envelope;
- a feature's tables are declared in its `models.py`.

The `ALLOWED_*` lists held the known violations while issue 11's bulk-data work removed them;
they are empty now, and nothing may be added to them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# (importing module, imported module) -> why it is still allowed. Function-level imports and the
# cycle edges they make are both covered by an entry.
ALLOWED_IMPORTS: dict[tuple[str, str], str] = {}
# Modules that still raise ApiError although they are not HTTP modules.
ALLOWED_API_ERRORS: dict[str, str] = {}
ALLOWED_ENVELOPES: dict[str, str] = {}
ALLOWED_MODEL_MODULES: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest one of app that the statement names)
    line: int
    in_function: str | None  # the enclosing function, for an import inside one


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(APP.rglob("*.py"))}


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(), str(MODULES[module]))


def _resolve(name: str) -> str | None:
    """The deepest module of app that `name` is or lies in (a module, or a name inside one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the package of `module`
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def _imports(module: str) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, function or getattr(child, "name", "<lambda>"))
            elif isinstance(child, ast.Import | ast.ImportFrom):
                for name in _imported(module, child):
                    target = _resolve(name) if name.split(".")[0] == "app" else None
                    found.append(Import(module, target or name, child.lineno, function))
            else:
                visit(child, function)

    visit(_tree(module), None)
    return found


@cache
def _all_imports() -> list[Import]:
    return [imp for module in MODULES for imp in _imports(module)]


def _allowed(imp: Import) -> bool:
    return (imp.source, imp.target) in ALLOWED_IMPORTS


def _node(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[:2] == ["app", "features"] and len(parts) > 2 else module


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_sees_the_imports():
    """Guards the guard: it finds the app's modules and the imports between them."""
    assert len(MODULES) > 100
    assert any(i.source == "app.jobs.http" and i.target == "app.jobs.waiting" for i in _all_imports())
    assert any(i.source == "app" and i.in_function == "create_app" for i in _all_imports())
    assert any(i.source == "app.auth" and i.target == "app.features.identity.service" for i in _all_imports())
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_features_or_modules():
    edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], set[str]] = defaultdict(set)
    for imp in _all_imports():
        if not imp.target.startswith("app") or _allowed(imp):
            continue
        a, b = _node(imp.source), _node(imp.target)
        if a != b:
            edges[a].add(b)
            why[a, b].add(f"{imp.source}:{imp.line} imports {imp.target}")
    problems = []
    for cycle in _cycles(edges):
        members = set(cycle)
        links = [
            line for (a, b), lines in sorted(why.items()) if a in members and b in members for line in lines
        ]
        problems.append(f"cycle {cycle}:\n  " + "\n  ".join(links))
    assert not problems, "\n".join(problems)


def test_the_job_kernel_never_imports_cron():
    wrong = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in _all_imports()
        if i.source.startswith("app.jobs") and i.target.startswith("app.cron")
    ]
    assert not wrong, wrong


def test_no_import_hides_inside_a_function():
    hidden = [
        f"{i.source}:{i.line} imports {i.target} inside {i.in_function}()"
        for i in _all_imports()
        if i.in_function and i.source != "app" and not _allowed(i)
    ]
    assert not hidden, "\n".join(hidden)


def test_the_allowlists_hold_only_what_is_still_there():
    """An entry must go when its violation does (the lead removes them as issue 11 lands)."""
    present = {(i.source, i.target) for i in _all_imports()}
    assert set(ALLOWED_IMPORTS) <= present, set(ALLOWED_IMPORTS) - present
    assert set(ALLOWED_API_ERRORS) <= {m for m in MODULES if _names(m, "ApiError")}
    assert set(ALLOWED_ENVELOPES) <= {m for m in MODULES if _builds_envelope(m)}


def _names(module: str, name: str) -> bool:
    return any(
        isinstance(n, ast.Name | ast.alias) and name in (getattr(n, "id", None), getattr(n, "name", None))
        for n in ast.walk(_tree(module))
    )


def _is_http_module(module: str) -> bool:
    return module == "app.api" or module.rpartition(".")[2].endswith("views")


def test_services_raise_domain_errors_not_http_ones():
    wrong = sorted(
        m for m in MODULES if not _is_http_module(m) and m not in ALLOWED_API_ERRORS and _names(m, "ApiError")
    )
    assert not wrong, f"ApiError outside the HTTP modules (raise an app.errors class instead): {wrong}"


def _builds_envelope(module: str) -> bool:
    return any(
        isinstance(node, ast.Dict)
        and any(isinstance(k, ast.Constant) and k.value == "success" for k in node.keys)
        for node in ast.walk(_tree(module))
    )


def test_services_build_no_response_envelope():
    services = [m for m in MODULES if m.rpartition(".")[2].endswith("service")]
    assert len(services) > 10
    wrong = sorted(m for m in services if m not in ALLOWED_ENVELOPES and _builds_envelope(m))
    assert not wrong, f'{{"success": …}} bodies belong in schemas or views: {wrong}'


def test_each_feature_declares_its_tables_in_its_models_module():
    wrong = []
    for module in MODULES:
        if module.rpartition(".")[2] == "models" or module in ALLOWED_MODEL_MODULES:
            continue
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(s, ast.Assign)
                and any(getattr(t, "id", None) == "__tablename__" for t in s.targets)
                for s in node.body
            ):
                wrong.append(f"{module}.{node.name}")
    assert not wrong, wrong

"""The layout holds: one-way dependencies between the layers, and one name per feature in every folder.

Layers, each importing only those before it (and itself):
core (``dashboard.core``) <- domain (``dashboard.domain``) <- ``queries`` <- ui (``dashboard.ui``).
Entry points import those layers and nothing imports them: ``pages/*.py`` and ``dashboard.app`` (with ui),
``jobs`` and ``api`` (without ui), and the command line ``dashboard.__main__``, the one module that may
import ``jobs`` and ``api``. ``dashboard.tools`` (the demo generator and the benchmarks) may import all
of that and the Resend double ``tests.local_resend``; only the command line imports it, and the app and
the API for the first-run demo load (``load_if_empty``). Product code never imports ``tests``.
Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("dashboard", "queries", "pages", "jobs", "api")
PROJECT = (*PRODUCT, "tests")

FEATURES = ("funnel", "upsells", "reviews", "followups", "customers", "calendars", "emails", "overview", "mechanics")
# Features without a page: a job over the platform's own writes.
JOB_FEATURES = ("intake",)

ALLOWED = {
    "core": {"core"},
    "domain": {"core", "domain"},
    "queries": {"core", "domain", "queries"},
    "ui": {"core", "domain", "queries", "ui"},
    "pages": {"core", "domain", "queries", "ui"},
    "app": {"core", "domain", "queries", "ui"},
    "jobs": {"core", "domain", "queries", "jobs"},
    "api": {"core", "domain", "queries", "api"},
    "command line": {"core", "domain", "queries", "jobs", "api", "tools"},
    "tools": {"core", "domain", "queries", "ui", "jobs", "api", "tools"},
}
ORDER = ["core", "domain", "queries", "ui", "jobs", "api", "tools"]
# (importer, module, name) imports allowed beyond ALLOWED.
DEMO_LOAD = {(importer, "dashboard.tools.demo.load", "load_if_empty") for importer in ("dashboard.app", "api.app")}
# Step 22 stores the failure cause of the emails failed before it with the email rules' own SQL form.
MIGRATION_BACKFILL = {
    ("dashboard.core.migrations.versions.0022_speed_rollups", "dashboard.domain.emails.failures", "classify_failed")
}
TOOLS_MAY_IMPORT_FROM_TESTS = {"tests.local_resend"}


def layer(module: str) -> str:
    if module == "dashboard.app":
        return "app"
    if module == "dashboard.__main__":
        return "command line"
    for prefix, name in (
        ("dashboard.core", "core"),
        ("dashboard.domain", "domain"),
        ("dashboard.ui", "ui"),
        ("dashboard.tools", "tools"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return name
    top = module.split(".")[0]
    if top == "dashboard":  # the package itself: a docstring
        return "core"
    return top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, str]:
    """{module name: source} of every product module."""
    return {
        module_name(path): path.read_text(encoding="utf-8")
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*.py"))
    }


def project_imports(module: str, source: str, known: set[str]):
    """(imported module, name or None, line, statement) of each import of the project in ``source``."""
    is_package = any(other.startswith(module + ".") for other in known)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT:
                    yield alias.name, None, node.lineno, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] not in PROJECT:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target, name = (submodule, None) if submodule in known else (base, alias.name)
                yield target, name, node.lineno, ast.unparse(node)


def violations(modules: dict[str, str], others: set[str] = frozenset()) -> list[str]:
    """What breaks the rules in ``modules``; ``others`` names the modules (the tests') that may
    be imported without being checked."""
    known = set(modules) | set(others)
    found = []
    for importer, source in sorted(modules.items()):
        importer_layer = layer(importer)
        for target, name, line, statement in project_imports(importer, source, known):
            target_layer = layer(target)
            if target_layer == "tests":
                if importer_layer == "tools" and target in TOOLS_MAY_IMPORT_FROM_TESTS:
                    continue
                why = (
                    f"of the tests, tools may import only {', '.join(sorted(TOOLS_MAY_IMPORT_FROM_TESTS))}"
                    if importer_layer == "tools"
                    else "product code never imports tests"
                )
                found.append(f"{importer} imports {target} (line {line}: `{statement}`): {why}")
                continue
            if (importer, target, name) in DEMO_LOAD | MIGRATION_BACKFILL:
                continue
            allowed = ALLOWED.get(importer_layer, set())
            if target_layer not in allowed:
                found.append(
                    f"{importer} imports {target} (line {line}: `{statement}`): {importer_layer} may "
                    f"import only {', '.join(sorted(allowed, key=ORDER.index))}"
                )
    return list(dict.fromkeys(found))  # one message per statement


def test_imports_go_one_way():
    modules = product_modules()
    assert len(modules) > 50, "the product's modules were not found"
    problems = violations(modules, {module_name(path) for path in (ROOT / "tests").glob("*.py")})
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_the_check_reads_imports_inside_functions_and_names_the_offender():
    modules = {
        "dashboard.core.db": "def f():\n    from queries import funnel\n",
        "queries.funnel": "import dashboard.ui.components\nfrom dashboard.core import db\n",
        "dashboard.ui.components": "",
        "pages.funnel": "from dashboard.tools.demo import load_if_empty\n",
        "dashboard.app": "from dashboard.tools.demo.load import load_if_empty\n",
        "dashboard.tools.demo": "from tests.local_resend import LocalResend\nimport api.auth\n",
        "dashboard.tools.bench": "from tests import local_resend, staff\n",
        "api.routes": "from tests.local_resend import LocalResend\nfrom . import auth\n",
        "api.auth": "",
    }
    assert violations(modules, {"tests.local_resend", "tests.staff"}) == [
        "api.routes imports tests.local_resend (line 1: `from tests.local_resend import LocalResend`): "
        "product code never imports tests",
        "dashboard.core.db imports queries.funnel (line 2: `from queries import funnel`): core may import only core",
        "dashboard.tools.bench imports tests.staff (line 1: `from tests import local_resend, staff`): "
        "of the tests, tools may import only tests.local_resend",
        "pages.funnel imports dashboard.tools.demo (line 1: `from dashboard.tools.demo import load_if_empty`): "
        "pages may import only core, domain, queries, ui",
        "queries.funnel imports dashboard.ui.components (line 1: `import dashboard.ui.components`): "
        "queries may import only core, domain, queries",
    ]


def test_one_command_line():
    mains = sorted(str(path.relative_to(ROOT)) for folder in PRODUCT for path in (ROOT / folder).rglob("__main__.py"))
    assert mains == ["dashboard/__main__.py"], (
        f"the command line is `python -m dashboard <command>` (dashboard/__main__.py); found {mains}"
    )


def test_every_feature_has_its_page_queries_doc_and_tests():
    missing = []
    for feature in FEATURES + JOB_FEATURES:
        paths = [f"docs/{feature}.md"]
        if feature in FEATURES:
            paths += [f"pages/{feature}.py", f"queries/{feature}.py"]
        missing += [f"{feature}: {path}" for path in paths if not (ROOT / path).is_file()]
        if not list((ROOT / "tests").glob(f"test_{feature}*.py")):
            missing.append(f"{feature}: tests/test_{feature}*.py")
    assert not missing, "features without their file:\n" + "\n".join(missing)


def test_every_domain_module_names_a_feature():
    domain = ROOT / "dashboard" / "domain"
    names = sorted(
        path.stem if path.is_file() else path.name
        for path in domain.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()
    )
    assert names, "no domain modules found"
    strays = ", ".join(name for name in names if name not in FEATURES + JOB_FEATURES)
    assert not strays, (
        f"dashboard/domain modules not named by a feature ({', '.join(FEATURES + JOB_FEATURES)}): {strays}"
    )

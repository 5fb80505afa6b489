"""``workbench new-target NAME``: writes a target package that runs green at once.

The package (``NAME/`` in the current directory, or under ``--dir``) holds a small counter
service on PostgreSQL, its client, one checker, the target's plan with a correct variant and a
planted bug, a test running both, and a ``pyproject.toml`` registering the target and checker
under the workbench's entry points. The templates are in ``template/``: ``__pkg__`` in a path
becomes the package name, ``.jinja`` is dropped, and the files are Jinja templates of ``name``,
``pkg`` (the import name), ``cls`` (the class-name prefix) and ``env_var`` (the variable naming
the variant).

Unless told not to, the package is then installed editable (``pip install -e``, no build
isolation, so nothing is downloaded) into the interpreter running the workbench, so that
``workbench run NAME`` finds it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2

from workbench.plugins import UsageError

TEMPLATE = Path(__file__).with_name("template")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(UsageError):
    """The name or the place cannot take a new target (exit 64)."""


def names(name: str) -> dict[str, str]:
    """The template variables of target ``name``: ``{"name": "demo-kv", "pkg": "demo_kv",
    "cls": "DemoKv", "env_var": "DEMO_KV_VARIANT"}``."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a target name: use lower-case letters, digits and single hyphens, "
            "starting with a letter (e.g. demo-kv)"
        )
    pkg = name.replace("-", "_")
    return {
        "name": name,
        "pkg": pkg,
        "cls": "".join(part.capitalize() for part in name.split("-")),
        "env_var": f"{pkg.upper()}_VARIANT",
    }


def render(name: str, parent: Path) -> Path:
    """Writes the package of target ``name`` to ``parent / name`` and returns that directory.
    Refuses (:class:`ScaffoldError`) a directory that already exists: nothing is overwritten."""
    values = names(name)
    root = parent / name
    if root.exists():
        raise ScaffoldError(f"{root} already exists: pick another name or remove it first")
    from workbench.registry import target_names

    if name in target_names():
        raise ScaffoldError(f"a target named {name!r} is already registered: pick another name")
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    for source in sorted(TEMPLATE.rglob("*")):
        if not source.is_file() or "__pycache__" in source.parts:
            continue
        relative = str(source.relative_to(TEMPLATE)).replace("__pkg__", values["pkg"])
        relative = relative.removesuffix(".jinja")
        dest = root / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(env.from_string(source.read_text()).render(values))
    return root


def install(root: Path) -> None:
    """``pip install -e root`` into this interpreter, without downloading anything."""
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    argv += ["--no-build-isolation", "--editable", str(root)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ScaffoldError(
            f"installing {root} failed ({last}); install it yourself with "
            f"`{sys.executable} -m pip install -e {root}`"
        )


def cmd_new_target(args: argparse.Namespace) -> int:
    root = render(args.name, Path(args.dir))
    if not args.no_install:
        install(root)
    values = names(args.name)
    print(f"wrote {root}/ (target {args.name!r}, package {values['pkg']})")
    if args.no_install:
        print(f"  install it: pip install -e {root}")
    print(f"  workbench run {args.name}                            # correct: exits 0")
    print(f"  workbench run {args.name} --variant read-then-write  # planted bug: exits 1")
    return 0


def add_new_target_parser(sub: Any) -> None:
    p = sub.add_parser(
        "new-target",
        help="write a new target package (service, client, checker, plan, test) and install it",
    )
    p.add_argument("name", help="the target's name, e.g. demo-kv")
    p.add_argument("--dir", default=".", help="where to create the package (default: here)")
    p.add_argument(
        "--no-install", action="store_true", help="only write the files; do not pip install -e"
    )
    p.set_defaults(handler=cmd_new_target)

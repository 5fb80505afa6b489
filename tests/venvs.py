"""A private virtualenv for tests that install things (a scaffolded target), so the workbench's
own environment stays as it was."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path


def private_venv(path: Path) -> Path:
    """Creates a virtualenv at ``path`` that sees the workbench's environment beneath its own
    site-packages, and returns its ``python``. What is installed into it stays in it."""
    # Without pip or setuptools of its own: the workbench environment's (seen below) are used,
    # and installs still land here, in this interpreter's site-packages.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120
    )
    python = path / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shared = sysconfig.get_paths()["purelib"]
    # A .pth line starting with "import" runs: addsitedir also reads the .pth files there (the
    # workbench's own editable install is one).
    (Path(own) / "workbench-under-test.pth").write_text(
        f"import site; site.addsitedir({shared!r})\n"
    )
    # The console script, as `pip install` of the workbench would write it.
    script = path / "bin" / "workbench"
    script.write_text(f"#!{python}\nimport sys\nfrom workbench.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return python

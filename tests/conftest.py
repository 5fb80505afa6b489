"""Suite-wide settings.

Hypothesis's per-example deadline is a timing assertion: on a machine whose cores another job
keeps busy (users' CI always), a 200 ms deadline fails examples that take 0.8 ms when quiet.
Speed goals live in bench/; here an example may take as long as the machine needs.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("workbench", deadline=None)
settings.load_profile("workbench")

"""The CLI's environment: consoles for stdout/stderr and the one way to fail.

Nothing below the CLI prints; commands write through these consoles.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import NoReturn

from rich.console import Console


@dataclass
class Env:
    debug: bool = False
    stdout: Console = field(default_factory=lambda: Console(soft_wrap=True))
    stderr: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))


def fail(env: Env, message: str, code: int) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    from rich.text import Text

    env.stderr.print(Text.assemble(("error: ", "bold red"), message), highlight=False)
    sys.exit(code)

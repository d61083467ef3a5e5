"""Running ``python -m crm`` in-process for tests."""

from __future__ import annotations

import io

from crm.__main__ import main


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()

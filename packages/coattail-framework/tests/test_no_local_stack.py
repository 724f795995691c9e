"""The framework's package holds no local stack and no test kit: they are coattail-devstack's (ADR-037).

Run by the framework's nox session on its built wheel, so this reads what the wheel installs.
"""

from __future__ import annotations

import re
from pathlib import Path

import coattail_framework

PACKAGE = Path(coattail_framework.__file__).parent
LOCAL_ONLY_IMPORT = re.compile(r"^\s*(?:from|import)\s+(moto|coattail_devstack|pytest)\b", re.M)


def test_no_framework_module_imports_moto_the_test_kit_or_pytest() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): match.group(1)
        for path in PACKAGE.rglob("*.py")
        if (match := LOCAL_ONLY_IMPORT.search(path.read_text()))
    }

    assert offenders == {}


def test_the_moved_modules_are_gone_from_the_framework() -> None:
    assert [name for name in ("localstack.py", "moto_kinesis.py", "testing") if (PACKAGE / name).exists()] == []

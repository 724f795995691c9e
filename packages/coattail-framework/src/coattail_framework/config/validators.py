"""Field validators shared by the detectors' config models (pure pydantic, no PySpark).

Example::

    class BigFillConfig(BaseModel):
        quote_currencies: list[Currency] = ["USD", "USDT"]
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

CURRENCY_PATTERN = re.compile(r"^[A-Z0-9]{1,15}$")
"""A currency code as the symbol catalogue spells it: upper-case letters or digits."""


def check_currency(value: str) -> str:
    """``value`` if it is a currency code, else ``ValueError`` saying what one looks like."""
    if not CURRENCY_PATTERN.match(value):
        raise ValueError(f"currency {value!r} must be upper case letters or digits, e.g. USDT")
    return value


Currency = Annotated[str, AfterValidator(check_currency)]
"""A ``str`` field validated by ``check_currency``."""

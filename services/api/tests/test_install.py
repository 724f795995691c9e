"""The alert API's Lambda package: a plain install pulls no PySpark, pyiceberg, Arrow, pandas or moto,
and still serves a route per declared alert view (the detectors' light declarations are installed).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from coattail_devstack.testing.venv import HEAVY_DISTRIBUTIONS, clean_venv, imported_after, installed_distributions

ROOT = Path(__file__).resolve().parents[3]
LOCAL = [
    "services/api",
    "packages/coattail-framework",
    "packages/coattail-kinesis",
    "packages/coattail-detector-volume-anomaly",
    "packages/coattail-detector-whale",
    "packages/coattail-detector-spread",
    "packages/coattail-detector-whale-alpha",
    "packages/coattail-detector-flow-imbalance",
    "packages/coattail-detector-split-order",
    "packages/coattail-detector-lead-lag",
]
ROUTES = (
    "from coattail_api import app\n"
    "print(json.dumps(sorted(view.path for _, view in app._views(app.installed_alert_types()))))"
)


def test_a_plain_install_is_light_and_declares_every_view(tmp_path: Path) -> None:
    python = clean_venv(tmp_path / "venv", *(ROOT / path for path in LOCAL))

    installed = installed_distributions(python)
    assert installed & HEAVY_DISTRIBUTIONS == set()
    assert {
        "coattail-api",
        "coattail-detector-whale",
        "coattail-detector-spread",
        "coattail-detector-whale-alpha",
    } <= installed

    loaded = imported_after(python, "import json\n" + ROUTES)
    assert loaded & {"pyspark", "pyarrow", "pyiceberg", "pandas"} == set()
    views = subprocess.run([str(python), "-c", "import json\n" + ROUTES], capture_output=True, text=True, check=True)
    # MOD-001, MOD-004 and MOD-005 declare no view
    assert json.loads(views.stdout) == ["alpha", "alpha-signals", "leaders", "spreads", "whales"]

"""The bridge never loads endpoint-side code: no plugin, no endpoint agent, no globus-sdk."""

from __future__ import annotations

import subprocess
import sys


def test_bridge_imports_no_plugin() -> None:
    code = (
        "import sys\n"
        "import radical.orbit.bridge.server, radical.orbit.cli.bridge\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('radical.orbit.plugins', 'radical.orbit.endpoint', 'globus_sdk')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_a_single_bridge_never_imports_redis() -> None:
    """The in-process backplane is the default: no new dependency is even imported."""
    code = (
        "import sys, tempfile, os\n"
        "os.environ['HOME'] = tempfile.mkdtemp()\n"
        "import radical.orbit.bridge.server, radical.orbit.cli.bridge\n"
        "from radical.orbit.bridge import BridgeSettings, create_app\n"
        "app = create_app(BridgeSettings(token='t'))\n"
        "print(type(app.backplane).__name__, ','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'redis')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["LocalBackplane"]

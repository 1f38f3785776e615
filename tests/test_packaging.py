"""What `pip install .` ships: every package folder of simtools is listed in setup.cfg."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "simtools").rglob("__init__.py")}
    assert found - listed == set(), "add these to [options] packages in setup.cfg"

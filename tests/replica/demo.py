"""`make demo`: the main job against the bundled replica of the sites (no internet needed).

Starts the replica on loopback, points TIP Watch at it with TIPWATCH_BASE_URLS, and runs
`tipwatch poll` twice: the first poll archives everything, the second finds nothing new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.replica import Replica

REAL_HOSTS = {
    "onu-vienne": "onu-vienne.delegfrance.org",
    "osce": "osce.delegfrance.org",
    "unodc": "www.unodc.org",
}


def main() -> int:
    data_dir = Path(os.environ.get("TIPWATCH_DATA_DIR", Path.cwd() / "data" / "demo"))
    tipwatch = str(Path(sys.executable).parent / "tipwatch")
    with tempfile.TemporaryDirectory() as workdir, Replica(Path(workdir)) as replica:
        env = dict(
            os.environ,
            TIPWATCH_DATA_DIR=str(data_dir),
            TIPWATCH_HOST_DELAY="0",
            TIPWATCH_BASE_URLS=json.dumps(
                {REAL_HOSTS[site]: url for site, url in replica.base_urls.items()}
            ),
        )
        print(f"replica sites: {replica.base_urls}\narchive: {data_dir}\n", flush=True)
        for _ in range(2):
            code = subprocess.call([tipwatch, "poll"], env=env)
            if code:
                return code
        print(f"\nInspect it: TIPWATCH_DATA_DIR={data_dir} {tipwatch} archive list")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

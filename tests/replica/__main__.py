"""``python -m tests.replica --port-base 8100``: serve the replica until Ctrl-C."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .server import Replica


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replica")
    parser.add_argument(
        "--port-base",
        type=int,
        default=8100,
        help="onu-vienne on PORT, osce on PORT+1, unodc on PORT+2",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to write the PDFs (default: a temporary directory)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tipwatch-replica-") as tmp:
        replica = Replica(args.workdir or Path(tmp), port_base=args.port_base, host=args.host)
        with replica:
            for name, url in replica.base_urls.items():
                print(f"{name:11} {url}/")
            print(
                f'TIPWATCH_BASE_URLS=\'{{"onu-vienne": "{replica.base_urls["onu-vienne"]}",'
                f' "osce": "{replica.base_urls["osce"]}",'
                f' "unodc": "{replica.base_urls["unodc"]}"}}\''
            )
            print("Ctrl-C to stop.", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()

"""``python -m serving``: the server as production runs it (uvicorn, uvloop, httptools).

What would stop it at start (invalid ``RECSYS_SERVING_*`` settings, a fallback catalogue or designs file
that does not load) is reported first as one ``error:`` line and exit status 2, instead of a start-up
traceback from every worker. ``recsys serve`` runs this module in a process of its own, so that the
training package never imports serving.
"""

from __future__ import annotations

import argparse
import sys

from serving.app import setup_problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (stateless; share the store)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    problems = setup_problems()
    if problems:
        print(f"error: {problems}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run("serving.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                loop="uvloop", http="httptools", log_level=args.log_level, access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

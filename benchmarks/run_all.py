"""Run every ``benchmarks/bench_*.py`` and regenerate ``docs/benchmarks.md``.

``make bench`` runs this script. Each benchmark runs in its own process and writes
``benchmarks/results/<name>.json``; the page is then rebuilt from all the JSON files, one
section per benchmark. A new benchmark only has to follow the conventions in ``_common.py``.

Examples::

    python benchmarks/run_all.py                  # everything, default sizes
    python benchmarks/run_all.py --quick          # n <= 1e5 (each benchmark's --quick)
    python benchmarks/run_all.py --only bench_em  # one benchmark
    python benchmarks/run_all.py --render-only    # rebuild the page from existing JSON
    python benchmarks/run_all.py -- --iters 10    # extra arguments for every benchmark
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import DOCS_FILE, RESULTS_DIR, discover, render_docs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this benchmark (e.g. bench_em); repeatable")
    p.add_argument("--render-only", action="store_true",
                   help="do not run anything; rebuild the markdown from existing JSON")
    p.add_argument("--docs", type=Path, default=DOCS_FILE)
    p.add_argument("extra", nargs="*", help="after --: arguments for every benchmark")
    args = p.parse_args(argv)

    scripts = discover()
    if args.only:
        unknown = set(args.only) - {s.stem for s in scripts}
        if unknown:
            p.error(f"unknown benchmark(s) {sorted(unknown)}; have {[s.stem for s in scripts]}")
        scripts = [s for s in scripts if s.stem in args.only]
    failed = []
    t0 = time.perf_counter()
    if not args.render_only:
        for script in scripts:
            out = RESULTS_DIR / f"{script.stem}.json"
            cmd = [sys.executable, str(script), "--out", str(out), "--no-docs", *args.extra]
            if args.quick:
                cmd.append("--quick")
            print(f"[run_all] {' '.join(cmd)}", file=sys.stderr, flush=True)
            t = time.perf_counter()
            rc = subprocess.run(cmd, check=False).returncode
            print(f"[run_all] {script.stem}: exit {rc} after {time.perf_counter() - t:.0f} s",
                  file=sys.stderr, flush=True)
            if rc != 0:
                failed.append(script.stem)
    render_docs(args.docs, RESULTS_DIR)
    print(f"[run_all] wrote {args.docs} ({time.perf_counter() - t0:.0f} s in all)"
          + (f"; FAILED: {failed}" if failed else ""), file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

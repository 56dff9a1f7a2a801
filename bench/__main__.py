"""Runs every benchmark, prints the figures and rewrites BENCHMARKS.md.

    python -m bench                        # every entry at full size (about half an hour on 2 cores)
    python -m bench --quick                # small sizes: a smoke test, BENCHMARKS.md left alone
    python -m bench --only input,training  # some entries; the others keep their last figures

Each entry runs in a process of its own, so that its imports and its peak
memory (``ru_maxrss`` of the process and of its children) are its own. An
entry is a module with ``run(quick) -> list[dict]``; its rows compare a
figure with a plain baseline measured in the same run (see
``bench/common.py``). A missing optional entry (serving) is skipped.

The figures of the latest run of each entry are kept in ``bench/results.json``
and BENCHMARKS.md is written from them between the ``generated`` markers;
everything else in that file (hand-written sections) is kept as it is.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from bench.console_table import HEADERS, format_console, number, row_cells
from bench.entries import BY_NAME, ENTRIES, Entry

PROJECT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = PROJECT / "BENCHMARKS.md"
RESULTS_JSON = Path(__file__).resolve().with_name("results.json")
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


# --------------------------------------------------------------------------- running entries


def run_child(name: str, quick: bool, result_path: str) -> int:
    """In the entry's own process: run it and write its rows and peak memory."""
    from bench import common

    entry = BY_NAME[name]
    started = time.perf_counter()
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as error:
        if error.name != entry.module or not entry.optional:
            raise
        result = {"skipped": f"{entry.module} does not exist"}
    else:
        rows = module.run(quick)
        result = {"rows": rows}
    result.update(seconds=round(time.perf_counter() - started, 1), peak_mb=common.peak_rss_mb(children=True))
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def run_entry(entry: Entry, quick: bool) -> dict:
    """Runs one entry in a new process; its output goes to the terminal as it comes."""
    print(f"\n=== {entry.title} ({entry.module}) ===", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_") as temp:
        result_path = Path(temp) / "result.json"
        args = [sys.executable, "-m", "bench", "--child", entry.name, "--result", str(result_path)]
        # Libraries' FutureWarnings about Python 3.10 would bury the figures.
        env = {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::FutureWarning")}
        status = subprocess.run(args + (["--quick"] if quick else []), cwd=PROJECT, env=env).returncode
        if status != 0 or not result_path.exists():
            result = {"error": f"exit status {status}; its output is above"}
        else:
            result = json.loads(result_path.read_text(encoding="utf-8"))
    result.update(
        module=entry.module,
        date=datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        quick=quick,
        rows=[normalise(row, entry.name) for row in result.get("rows", [])],
    )
    return result


def normalise(row: dict, entry: str) -> dict:
    """Rows in the common format (``bench/common.py``) as they are; rows of
    entries with a format of their own mapped onto it: the figure is the
    first ``*_per_s``, ``*_ms`` or ``*seconds`` value that has a
    ``baseline_*`` value beside it, else the first such value."""
    if "figure" in row:
        return {"entry": entry, **row}
    numbers = [k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    candidates = [
        k
        for suffix in ("_per_s", "_ms", "seconds")
        for k in numbers
        if k.endswith(suffix) and not k.startswith("baseline_")
    ]
    with_baseline = [k for k in candidates if row.get(f"baseline_{k}") is not None]
    key = (with_baseline or candidates or [None])[0]
    figure = row.get(key) if key else None
    baseline = row.get(f"baseline_{key}") if key else None
    ratio = row.get("ratio")
    if ratio is None and figure is not None and baseline:
        ratio = round(figure / baseline, 3)
    shown = {"name", "ratio", "target", "met", "meets_target", key, f"baseline_{key}"}
    note = ", ".join(
        f"{k} {v}" for k, v in row.items() if k not in shown and v is not None and not isinstance(v, (dict, list))
    )
    units = {"_per_s": key[: -len("_per_s")] + "/s" if key else "", "_ms": "ms", "seconds": "s"}
    unit = next((text for suffix, text in units.items() if key and key.endswith(suffix)), "")
    target = row.get("target")
    return {
        "entry": entry,
        "name": str(row.get("name", "?")),
        "figure": figure,
        "baseline": baseline,
        "unit": unit,
        "ratio": ratio,
        "higher_is_better": bool(key and key.endswith("_per_s")),
        "target": target if isinstance(target, (int, float)) and not isinstance(target, bool) else None,
        "goal": None,
        "met": row.get("met", row.get("meets_target")),
        "peak_mb": None,
        "baseline_peak_mb": None,
        "note": note,
    }


# --------------------------------------------------------------------------- formatting


def _markdown_table(rows: list[dict], with_notes: bool = True) -> list[str]:
    headers = HEADERS + (["notes"] if with_notes else [])
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(["---"] + ["---:"] * 6 + ["---"] * with_notes) + " |"]
    for row in rows:
        cells = row_cells(row)
        cells[0] = cells[0].replace("  ", "&nbsp;&nbsp;", 1) if cells[0].startswith("  ") else cells[0]
        if with_notes:
            cells.append(str(row.get("note") or ""))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def machine() -> dict:
    """Where the figures were measured."""
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(terse=True)}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kilobytes = int(next(line for line in meminfo.splitlines() if line.startswith("MemTotal")).split()[1])
        info["memory_gb"] = round(kilobytes / 1024 / 1024, 1)
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    for package in ("tensorflow", "tfx", "tensorflow-transform", "apache-beam"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "absent"
    info["load_average"] = round(os.getloadavg()[0], 1)
    return info


def _machine_line(info: dict) -> str:
    return (
        f"{info.get('cores')} cores ({info.get('cpu', '?')}), {info.get('memory_gb', '?')} GB memory, "
        f"{info.get('system', '?')}; Python {info.get('python')}, TensorFlow {info.get('tensorflow')}, "
        f"TFX {info.get('tfx')}, TFT {info.get('tensorflow-transform')}, Beam {info.get('apache-beam')}"
    )


def render(results: dict) -> str:
    """The generated part of BENCHMARKS.md, from the latest result of each entry."""
    lines = [START, "<!-- Written by `python -m bench` from bench/results.json; edit outside these markers. -->", ""]
    latest = max(results.values(), key=lambda result: result.get("date", ""))
    lines += [
        "## Latest figures",
        "",
        "Each figure is compared with a plain baseline measured in the same run, on the same machine "
        "(ratio = figure / baseline). Machine: " + _machine_line(latest.get("machine", {})) + ".",
        "",
    ]
    headline = [
        {**row, "name": f"{entry.title}: {row['name']}"}
        for entry in ENTRIES
        for row in results.get(entry.name, {}).get("rows", [])
        if row.get("target") is not None
    ]
    if headline:
        lines += _markdown_table(headline, with_notes=False) + [""]
    for entry in ENTRIES:
        result = results.get(entry.name)
        if result is None:
            continue
        info = result.get("machine", {})
        lines += [f"### {entry.title}", "", entry.what, ""]
        quick = " (a quick run: small sizes, not representative)" if result.get("quick") else ""
        lines.append(
            f"Measured {result['date']}{quick} by `{result.get('module', entry.module)}` in "
            f"{result.get('seconds', '?')} s, with a load average of {info.get('load_average')} at the start; "
            f"the entry's process and its children peaked at {number(result.get('peak_mb'))} MB."
        )
        if info and info.get("cores") != latest.get("machine", {}).get("cores"):
            lines.append(f"Machine: {_machine_line(info)}.")
        lines.append("")
        if "skipped" in result:
            lines += [f"Skipped: {result['skipped']}.", ""]
        elif "error" in result:
            lines += [f"Failed: {result['error']}.", ""]
        else:
            lines += _markdown_table(result["rows"]) + [""]
    lines.append(END)
    return "\n".join(lines)


def write_benchmarks_md(results: dict) -> None:
    """Replaces the generated part of BENCHMARKS.md, or puts it before the
    file's first section; everything else in the file is kept as it is."""
    generated = render(results)
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + generated + rest.split(END, 1)[1]
    else:
        lines = text.splitlines(keepends=True)
        first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        head = "".join(lines[:first_section]).rstrip("\n")
        tail = "".join(lines[first_section:])
        text = f"{head}\n\n{generated}\n" + (f"\n{tail}" if tail else "")
    BENCHMARKS_MD.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default="", help=f"comma-separated entries: {', '.join(BY_NAME)}")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite BENCHMARKS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.quick, args.result)

    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(BY_NAME)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown entries {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    write = not args.quick if args.write is None else args.write

    info = machine()
    print(f"Machine: {info.get('cores')} cores, {info.get('memory_gb')} GB, load average {info['load_average']}")
    fresh: dict[str, dict] = {}
    for entry in ENTRIES:
        if entry.name not in names:
            continue
        if entry.name in fresh:  # already measured by an earlier entry (storage by end_to_end)
            continue
        result = run_entry(entry, args.quick)
        result["machine"] = info
        by_entry: dict[str, list] = {}
        for row in result["rows"]:
            by_entry.setdefault(row["entry"], []).append(row)
        for name, rows in (by_entry or {entry.name: []}).items():
            fresh[name] = {**result, "rows": rows}
        info = machine()  # the next entry's starting load

    failed = [name for name, result in fresh.items() if "error" in result]
    print()
    for entry in ENTRIES:
        result = fresh.get(entry.name)
        if result is None:
            continue
        status = result.get("skipped") or result.get("error") or f"{result['seconds']} s, peak {result['peak_mb']} MB"
        print(f"{entry.title} ({status})")
        if result["rows"]:
            print(format_console(result["rows"]))
        print()

    if write:
        results = json.loads(RESULTS_JSON.read_text(encoding="utf-8")) if RESULTS_JSON.exists() else {}
        results.update(fresh)
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        write_benchmarks_md(results)
        print(f"Wrote {BENCHMARKS_MD} and {RESULTS_JSON}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The entry point of a task run with ``--isolated``: the stand-ins, then the task.

    python -m pipeline.runners.rehearsal.task_main ROOT LOG_FILE MODULE ARGS...

A task in its own process needs the Vertex AI stand-ins installed there too
(``stand_ins.install``) before it runs ``python -m MODULE ARGS`` as its
container would.
"""

import runpy
import sys
from pathlib import Path

from pipeline.runners.rehearsal import stand_ins


def main(argv: list[str]) -> None:
    root, log_file, module, *args = argv
    stand_ins.install(Path(root), Path(log_file), " ".join([module, *args]))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])

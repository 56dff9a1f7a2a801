"""``flowers-tfx rehearse``: a compiled Kubeflow v2 spec, run here the way Vertex AI runs it.

Vertex AI Pipelines plays a launcher for every task of a spec: it builds the
task's ExecutorInput (input artifacts, parameters, output URIs, an output
file), runs the task's container command with it, and reads the output file
back for the tasks that follow. The rehearsal plays that launcher on this
machine, so that a spec can be tried before a cloud run is paid for, and so
that the tests run the very spec that users submit:

- ``spec.py``           reads the spec and orders its tasks;
- ``storage.py``        where gs:// and the image's /pipeline are on this machine;
- ``executor_input.py`` builds each task's ExecutorInput;
- ``records.py``        the artifacts of every rehearsal, which answer resolver tasks;
- ``launcher.py``       runs a task's command, in this process or its own;
- ``runner.py``         the loop over the tasks, with progress and exit status;
- ``stand_ins.py``      puts ``vertex_fake/`` (the fake Vertex AI SDK the tests
                        use too) in place in a task's process, and removes it.
"""

from pipeline.runners.rehearsal import runner, stand_ins
from pipeline.runners.rehearsal.runner import Rehearsal, RehearsalError

__all__ = ["Rehearsal", "RehearsalError", "rehearse"]


def rehearse(*args, **kwargs) -> int:
    """``runner.rehearse``, then the modules its stand-ins replaced (the
    Vertex AI SDK, the training job client) are put back as they were."""
    try:
        return runner.rehearse(*args, **kwargs)
    finally:
        stand_ins.restore()

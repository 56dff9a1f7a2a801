"""``flowers-tfx rehearse SPEC --root DIR``: a compiled spec, run here as Vertex AI runs it.

The main CLI mounts it with ``add_rehearse_commands(subparsers)``. The
rehearsal itself is ``pipeline/runners/rehearsal/``; TFX is imported only
when the command runs, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse

EPILOG = """\
Every task of the spec runs with the ExecutorInput Vertex AI's launcher
would give it. gs://BUCKET/PATH is the folder DIR/gcs/BUCKET/PATH (put the
data there). Resolver tasks and the cache are answered from the records of
earlier rehearsals under DIR; the Vertex AI Training job, the Model Registry
and endpoints are answered by stand-ins that check each request against
google-cloud-aiplatform's types, and Dataflow's options are checked before
the DirectRunner runs the Beam steps.

Without --image the tasks run with this environment's Python and /pipeline,
the image's copy of the project, is this checkout. With --image TAG each task
runs in a new container of that local image (docker, podman or buildah), as
its user, in its own /pipeline, with DIR mounted at its own path and nothing
of the checkout: build it first with 'flowers-tfx image build'.

exit status: 0 every task finished (and the Pusher pushed, or the model was
already serving), 1 a task failed (its log is named), 2 a bad spec or
directory, 3 every task finished but the model was not blessed, 130
interrupted.

example:
  flowers-tfx compile --config vertex.toml --out pipeline.json
  flowers-tfx rehearse pipeline.json --root /tmp/rehearsal
  flowers-tfx rehearse pipeline.json --root /tmp/rehearsal --image localhost/flowers-tfx:latest
"""


def command_rehearse(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.reporting.runs import exit_status
    from pipeline.runners.rehearsal import rehearse  # loads TFX
    from pipeline.runners.rehearsal.stand_ins import recorded_push_outcome

    status = rehearse(
        args.spec,
        args.root,
        isolated=args.isolated,
        pipeline_root=args.pipeline_root,
        image=args.image,
        builder=args.builder,
    )
    if status != 0:
        return status
    # Every task finished: the Pusher's output says whether the model was blessed (3 when not).
    pushed = recorded_push_outcome(Path(args.root).expanduser().absolute())
    return exit_status(pushed["state"]) if pushed else status


def add_rehearse_commands(subparsers) -> None:
    """Adds ``rehearse`` to the main CLI's subparsers."""
    rehearse = subparsers.add_parser(
        "rehearse",
        help="run a compiled Kubeflow v2 spec on this machine the way Vertex AI Pipelines runs it",
        description="Run a compiled Kubeflow v2 spec (.json or .yaml) on this machine as Vertex AI would.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rehearse.add_argument("spec", metavar="SPEC", help="the compiled spec: a .json PipelineJob or a .yaml PipelineSpec")
    rehearse.add_argument(
        "--root",
        required=True,
        metavar="DIR",
        help="where gs:// is (DIR/gcs/BUCKET/...), the logs and the records of every rehearsal",
    )
    rehearse.add_argument(
        "--isolated",
        action="store_true",
        help="run each task in its own Python process, as Vertex AI does (slower: imports each time)",
    )
    rehearse.add_argument(
        "--pipeline-root", metavar="gs://...", help="the pipeline root, for a .yaml spec compiled without one"
    )
    rehearse.add_argument(
        "--image", metavar="TAG", help="run every task inside this local image (see 'flowers-tfx image build')"
    )
    rehearse.add_argument(
        "--builder",
        choices=("docker", "podman", "buildah"),
        help="what runs the image's containers (default: the first found)",
    )
    rehearse.set_defaults(func=command_rehearse)

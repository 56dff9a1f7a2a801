"""``flowers-tfx batch-predict``: a pushed model over many images, as a Beam job.

    flowers-tfx batch-predict --model DIR --input GLOB --out DIR [--workers N]
    flowers-tfx batch-predict ... --runner DataflowRunner --config vertex.toml

The job itself is ``components/batch_inference/job.py``, started by
``pipeline/serving/batch_predict.py``; this module reads the options,
builds the Beam options and prints the tally. Beam and
TensorFlow are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipeline.cli.options import add_config_options, config_from_args, positive_int
from pipeline.errors import EXIT_OK, EXIT_PROBLEMS

EPILOG = """\
--model is a model version (the folder holding saved_model.pb) or a serving
directory of numbered versions, whose highest version is used. --input is a
glob of image files (JPEG, PNG) or of TFRecord shards in the codelab format
(names ending in .tfrec), local or gs://. --out receives JSON Lines shards,
predictions-SSSSS-of-NNNNN.jsonl, one line per image:

  {"file": "...", "class": "roses", "score": 0.91,
   "top_k": [{"class": "roses", "score": 0.91}, ...], "model_version": "1732200000"}

An image that cannot be read or decoded, is over the pixel budget or is
rejected by the model gets {"file": "...", "reason": "...", "model_version": ...}
and is counted; the job goes on. A record of a shard is named SHARD#INDEX.
The tally (images, per class, refused) is also written to DIR/tally.json.

Locally the job runs on Beam's DirectRunner, in --workers processes.
--runner DataflowRunner submits it to Dataflow with the [vertex] section's
project, region, temporary location (vertex.dataflow_temp_location, or
<pipeline_root>/tmp) and image (the workers' SDK container); the model,
input and output must then be gs:// paths.

exit status: 0 every image classified, 1 some were refused, 2 bad paths or
arguments (no model, no input matched, an output folder already used).

examples:
  flowers-tfx batch-predict --model flowers-work/serving --input 'photos/*/*.jpg' --out preds
  flowers-tfx batch-predict --model flowers-work/serving --input 'shards/*.tfrec' --out preds --workers 2
  flowers-tfx batch-predict --config vertex.toml --runner DataflowRunner \\
      --model gs://BUCKET/serving --input 'gs://BUCKET/photos/*.jpg' --out gs://BUCKET/predictions
"""


def command_batch_predict(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from components.shared.serving_layout import is_remote
    from pipeline.serving.versions import find_saved_model

    if not is_remote(args.model_dir):  # an object store is looked at by the job, with TensorFlow
        find_saved_model(args.model_dir)  # a wrong local --model is named before TensorFlow and Beam load
    from pipeline.serving import batch_predict  # heavy: TensorFlow, Beam

    options = batch_predict.beam_args(config, args.runner, args.workers)
    if args.runner == "DataflowRunner":
        batch_predict.check_remote({"--model": args.model_dir, "--input": args.input, "--out": args.out})
    # Beam relays each local worker's start-up warnings (no staging folder, options
    # meant for the runner): nothing a user can act on. Quiet for this job only.
    relay = logging.getLogger("apache_beam.runners.portability.local_job_service")
    level = relay.level
    relay.setLevel(logging.ERROR)
    try:
        tally = batch_predict.batch_predict(
            args.model_dir,
            args.input,
            args.out,
            options,
            top_k=args.top_k,
            batch_size=args.batch_size,
            max_pixels=args.max_image_pixels or config.data.max_image_pixels,
        )
    finally:
        relay.setLevel(level)
    print(tally.format())
    if tally.refused:
        print(f"{tally.refused} of {tally.images} image(s) refused", file=sys.stderr)
    return EXIT_PROBLEMS if tally.refused else EXIT_OK


def add_batch_commands(subparsers) -> None:
    """Adds ``batch-predict`` to the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "batch-predict",
        help="classify many images with a pushed model, as a Beam job (locally or on Dataflow)",
        description="Classify every image a glob names with a pushed model, through Beam's RunInference.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", dest="model_dir", required=True, metavar="DIR", help="a model version or serving directory"
    )
    parser.add_argument("--input", required=True, metavar="GLOB", help="image files or TFRecord shards (local, gs://)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the JSON Lines shards")
    parser.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="classes per line (default 3)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="N", help="images per model call (default 32)"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="DirectRunner worker processes (default 1)"
    )
    parser.add_argument(
        "--runner",
        choices=("DirectRunner", "DataflowRunner"),
        default="DirectRunner",
        help="where the job runs (default DirectRunner, on this machine)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=positive_int,
        metavar="N",
        help="refuse images whose header declares more than N pixels (default: data.max_image_pixels)",
    )
    add_config_options(parser)
    parser.set_defaults(func=command_batch_predict)

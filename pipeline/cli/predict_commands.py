"""The ``predict`` command of ``flowers-tfx``: classify image files.

    flowers-tfx predict --model DIR IMAGE...                          a pushed model, here
    flowers-tfx predict --endpoint NAME --config vertex.toml IMAGE... a Vertex AI endpoint
    flowers-tfx predict --server URL IMAGE...                         TF Serving's REST API

Locally the model is loaded with TensorFlow (``pipeline/serving/predict.py``);
the remote forms send the files over HTTP (``pipeline/serving/remote_predict.py``)
and say which deployed model answered each, so a canary can be checked
before it takes all the traffic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import schema
from pipeline.cli.options import add_config_options, config_from_args, positive_int
from pipeline.config import ConfigError
from pipeline.config_loading import load_config
from pipeline.errors import EXIT_OK, EXIT_PROBLEMS

PREDICT_EPILOG = """\
DIR is a model version (the folder holding saved_model.pb) or a serving
directory of numbered versions, whose highest version is used. Images are
JPEG, PNG, GIF or BMP files of any size; they go through the model's
serving_default signature as encoded bytes, exactly as TF Serving's REST API
receives them ({"instances": [{"image_bytes": {"b64": ...}}]}).

A file that cannot be read or decoded is reported on stderr with its reason;
the other files are still classified. So is a file whose header declares more
pixels than --max-image-pixels: it is never decoded (the model itself also
refuses images over the budget it was trained with).

--endpoint NAME_OR_ID sends each file, in a request of its own, to a Vertex AI
endpoint (vertex.project and vertex.region from --config; Application Default
Credentials) and prints which deployed model answered it, then how many each
answered: with a 10% canary, about one file in ten. FLOWERS_VERTEX_API_URL
replaces Vertex AI's URL (a stand-in, a proxy). --server URL does the same with
TF Serving's REST API (URL/v1/models/NAME:predict, NAME from --model-name).
The server checks the pixel budget itself.

exit status: 0 every file classified, 1 some files could not be (or the
server did not answer), 2 no model at DIR, no such endpoint (or bad arguments).

examples:
  flowers-tfx predict --model flowers-work/serving rose.jpg tulip.png
  flowers-tfx predict --model flowers-work/serving/1732200000 photos/*.jpg --top-k 1
  flowers-tfx predict --model prod photos/*.jpg --json > predictions.json
  flowers-tfx predict --endpoint flowers --config vertex.toml photos/*.jpg
  flowers-tfx predict --server http://localhost:8501 --model-name flowers rose.jpg
"""


def _print_failures(failures: list[tuple[str, str]], total: int) -> int:
    for file, reason in failures:
        print(f"error: {file}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {total} file(s) not classified", file=sys.stderr)
    return EXIT_PROBLEMS if failures else EXIT_OK


def _predict_remote(args: argparse.Namespace) -> int:
    from pipeline.serving import remote_predict  # plain HTTP: no TensorFlow

    files, labels = [Path(p) for p in args.images], list(schema.LABELS)
    if args.endpoint:
        vertex = config_from_args(args).vertex
        if not vertex.project or not vertex.region:
            raise ConfigError("--endpoint needs vertex.project and vertex.region (in --config or --set)")
        resource, answers = remote_predict.predict_vertex(
            files, vertex.project, vertex.region, args.endpoint, labels, args.top_k, args.timeout
        )
        where = f"Endpoint: {resource.get('displayName', args.endpoint)} ({resource.get('name')})"
        split = resource.get("trafficSplit") or {}
        if split:
            where += "\n  traffic " + ", ".join(f"{model_id}: {share}%" for model_id, share in split.items())
    else:
        _, answers = remote_predict.predict_tf_serving(
            files, args.server, args.model_name, labels, args.top_k, args.timeout
        )
        where = f"Server: {args.server} (model {args.model_name})"
    if args.json:
        print(json.dumps([answer.to_dict() for answer in answers if not answer.error], indent=2))
    else:
        print(where)
        print(remote_predict.format_answers(answers))
    return _print_failures([(a.file, a.error) for a in answers if a.error], len(files))


def command_predict(args: argparse.Namespace) -> int:
    if args.endpoint or args.server:
        return _predict_remote(args)
    from pipeline.serving.versions import find_saved_model

    find_saved_model(args.model_dir)  # a wrong --model is named before TensorFlow loads
    from pipeline.serving.predict import format_predictions, predict_files  # heavy: TensorFlow

    max_pixels = args.max_image_pixels
    if max_pixels is None:  # data.max_image_pixels: its default, or the environment
        max_pixels = load_config(None, {}).data.max_image_pixels
    report = predict_files(
        Path(args.model_dir), [Path(p) for p in args.images], args.top_k, args.batch_size, max_pixels=max_pixels
    )
    if args.json:
        print(json.dumps([p.to_dict() for p in report.predictions], indent=2))
    else:
        print(f"Model: {report.model_dir}")
        print(format_predictions(report))
    return _print_failures([(f.file, f.reason) for f in report.failures], len(args.images))


def add_predict_command(subparsers) -> None:
    """Adds ``predict`` to the main CLI's subparsers."""
    predict = subparsers.add_parser(
        "predict",
        help="classify image files with a pushed model, a Vertex AI endpoint or TF Serving",
        description="Classify image files with a pushed model, through its serving signature.",
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--model",
        dest="model_dir",
        metavar="DIR",
        help="a model version folder, or a serving directory (its highest version is used)",
    )
    where.add_argument("--endpoint", metavar="NAME_OR_ID", help="a Vertex AI endpoint (display name or numeric ID)")
    where.add_argument("--server", metavar="URL", help="TF Serving's REST API, e.g. http://localhost:8501")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    predict.add_argument(
        "--top-k", type=positive_int, default=3, metavar="K", help="classes to show per image (default 3)"
    )
    predict.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="N", help="--model: images per model call (default 32)"
    )
    predict.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    predict.add_argument(
        "--max-image-pixels",
        type=positive_int,
        metavar="N",
        help="--model: refuse images whose header declares more than N pixels (width x height), "
        "without decoding them (default: data.max_image_pixels, 40,000,000)",
    )
    predict.add_argument(
        "--model-name", default="flowers", metavar="NAME", help="--server: the model's name in TF Serving"
    )
    predict.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="--endpoint/--server: seconds per request"
    )
    add_config_options(predict)
    predict.set_defaults(func=command_predict)

"""The ``data`` command: make, convert and check TFRecord shards of flower photos.

The project's main CLI mounts it with ``add_data_commands(subparsers)`` and
runs ``args.func(args)``, which returns the exit code. Standalone::

    python -m pipeline.cli.data_commands data inspect 'runs/shards/*.tfrec'

Heavy libraries (TensorFlow, Beam) are imported only when a command runs, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

# google-api-core (pulled in by Beam) warns about Python 3.10 on every import: noise for users.
warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)

from pipeline.cli.options import positive_int  # noqa: E402
from pipeline.errors import EXIT_OK, EXIT_PROBLEMS, FlowersError, run_command  # noqa: E402

DATA_EPILOG = """\
examples:
  # 1000 synthetic flower pictures in 4 shards, to try the pipeline without photos
  %(prog)s synth --out runs/synth --images 1000 --shards 4 --seed 0

  # a folder of photos (one subfolder per class) into 16 shards of 192x192 JPEGs
  %(prog)s convert --from flower_photos --out runs/flowers-192

  # check shards before training on them
  %(prog)s inspect 'runs/flowers-192/*.tfrec'
"""

SYNTH_EPILOG = """\
The pictures are drawn, not photographed: each class has its own shape
(daisy: thin white rays; dandelion: dense yellow disc or white puffball;
roses: spiral of round petals; sunflowers: big petals, large dark centre;
tulips: cup on a stem) with overlapping colours, so a small CNN can learn them.
The same --seed gives byte-identical shards.

example:
  %(prog)s --out runs/synth --images 1000 --shards 4 --seed 0
"""

CONVERT_EPILOG = """\
SOURCE must hold one folder per class, named daisy, dandelion, roses,
sunflowers or tulips, with .jpg/.jpeg/.png files inside (other files at the top
level, such as a LICENSE.txt, are ignored). Every photo is turned upright, made
square (--crop: centre crop, the default; --pad: black borders), resized and
written as JPEG into flowersNN-COUNT.tfrec shards in OUT. Files that cannot be
converted are listed on stderr and in OUT/skipped.txt, and the exit status is 1;
so is a file whose header declares more pixels than --max-image-pixels (it is
never decoded).

exit status: 0 all converted, 1 some files skipped, 2 bad arguments or folders.

examples:
  %(prog)s --from flower_photos --out runs/flowers-192
  %(prog)s --from flower_photos --out runs/flowers-331 --size 331 --pad

  # on Dataflow: Apache Beam options go after --
  %(prog)s --from gs://BUCKET/flower_photos --out gs://BUCKET/flowers-192 -- \\
      --runner=DataflowRunner --project=PROJECT --region=us-central1 \\
      --temp_location=gs://BUCKET/tmp --setup_file=./setup.py
"""

INSPECT_EPILOG = """\
Counts records per shard and per class, tallies image sizes, checks that the
COUNT in each flowersNN-COUNT.tfrec name is right, and lists every record that
breaks the format and every file that is truncated or corrupted. An image
whose header declares more pixels than --max-image-pixels is such a record
(it is never decoded).

exit status: 0 all good, 1 problems found, 2 nothing matches PATTERN.

examples:
  %(prog)s 'runs/flowers-192/*.tfrec'      (quote the pattern)
  %(prog)s runs/flowers-192 --json > report.json
"""


# --------------------------------------------------------------------------- commands


def _max_image_pixels(args: argparse.Namespace) -> int:
    """--max-image-pixels, else data.max_image_pixels (its default, or the
    FLOWERS_TFX__DATA__MAX_IMAGE_PIXELS environment variable)."""
    if args.max_image_pixels is not None:
        return args.max_image_pixels
    from pipeline.config_loading import load_config

    return load_config(None, {}).data.max_image_pixels


def _synth(args: argparse.Namespace) -> int:
    from pipeline.data.synth import write_synthetic_shards

    paths = write_synthetic_shards(args.out, args.images, args.shards, args.seed, args.size)
    print(f"wrote {args.images} synthetic {args.size}x{args.size} records into {len(paths)} shard(s) in {args.out}")
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    if args.beam_args and not args.beam_args[0].startswith("-"):
        raise FlowersError(
            f"unexpected argument {args.beam_args[0]!r}; Apache Beam options go after -- "
            "and look like --runner=DataflowRunner"
        )
    from pipeline.data.photo_folders import list_source_images

    list_source_images(args.source_dir)  # a wrong --from is named before TensorFlow and Beam load
    from pipeline.data.convert import convert_folder  # heavy: TensorFlow, Beam

    mode = "pad" if args.pad else "crop"
    result = convert_folder(
        args.source_dir, args.out, args.size, args.shards, mode, args.beam_args, _max_image_pixels(args)
    )
    print(f"wrote {result.written} records into {len(result.shard_paths)} shard(s) in {result.out_dir}")
    for label, count in result.per_class.items():
        print(f"  {label:<12}{count:>7}")
    if result.skipped:
        print(f"{len(result.skipped)} file(s) skipped (also listed in {result.skipped_report}):", file=sys.stderr)
        for path, reason in result.skipped:
            print(f"  skipped {path}: {reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    from pipeline.data.inspect import format_report, inspect_shards

    report = inspect_shards(args.pattern, _max_image_pixels(args))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


# --------------------------------------------------------------------------- parser


def _add_budget_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-image-pixels",
        type=positive_int,
        metavar="N",
        help="refuse images whose header declares more than N pixels (width x height), "
        "without decoding them (default: data.max_image_pixels, 40,000,000)",
    )


def add_data_commands(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command (``synth``, ``convert``, ``inspect``) to an argparse subparsers object."""
    data = subparsers.add_parser(
        "data",
        help="make, convert and check TFRecord shards of flower photos",
        description="Make, convert and check TFRecord shards in the format of the 'Keras on TPU' codelabs.",
        epilog=DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    synth = commands.add_parser(
        "synth",
        help="write shards of synthetic flower pictures",
        description="Write shards of procedurally drawn flower pictures (5 balanced classes).",
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="folder to write the shards into")
    synth.add_argument("--images", required=True, type=positive_int, metavar="N", help="number of pictures")
    synth.add_argument("--shards", required=True, type=positive_int, metavar="K", help="number of shard files")
    synth.add_argument("--seed", required=True, type=int, metavar="S", help="random seed; same seed, same bytes")
    synth.add_argument("--size", type=positive_int, default=192, help="picture width and height (default 192)")
    synth.set_defaults(func=_synth)

    convert = commands.add_parser(
        "convert",
        help="convert a folder of photos (one subfolder per class) into shards, with Apache Beam",
        description="Convert SOURCE/CLASS/*.jpg|jpeg|png into TFRecord shards of square JPEGs.",
        epilog=CONVERT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("--from", dest="source_dir", required=True, metavar="SOURCE", help="folder of class folders")
    convert.add_argument("--out", required=True, metavar="OUT", help="folder for the shards (must hold none yet)")
    convert.add_argument("--size", type=positive_int, default=192, help="output width and height (default 192)")
    convert.add_argument("--shards", type=positive_int, default=16, help="number of shard files (default 16)")
    shape = convert.add_mutually_exclusive_group()
    shape.add_argument("--crop", action="store_true", help="centre-crop to a square (default)")
    shape.add_argument("--pad", action="store_true", help="keep the whole photo, pad to a square with black")
    _add_budget_option(convert)
    convert.add_argument(
        "beam_args",
        nargs="*",
        metavar="-- BEAM_OPTION",
        help="Apache Beam pipeline options, after -- (default: DirectRunner)",
    )
    convert.set_defaults(func=_convert)

    inspect = commands.add_parser(
        "inspect",
        help="check shards against the record format and count what is inside",
        description="Check TFRecord shards against the flower record format and summarise them.",
        epilog=INSPECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("pattern", metavar="PATTERN", help="glob of shard files (local or gs://), or a folder")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    _add_budget_option(inspect)
    inspect.set_defaults(func=_inspect)
    return data


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m pipeline.cli.data_commands data ...``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.cli.data_commands", description="Flower data tools.")
    add_data_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run_command(parser.parse_args(argv))  # the one place errors become exit statuses


if __name__ == "__main__":
    sys.exit(main())

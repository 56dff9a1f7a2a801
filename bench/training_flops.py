"""Training, how close to the machine (issue 17).

For three cases, the convnet (the default model, 64 px), squeezenet (192 px) and mobilenetv2's fine-tuning
phase (192 px, the whole base unfrozen), the rows give the Trainer's achieved
FLOP/s, training FLOPs per image (``bench/flops.py``: the registered FLOPs of
the forward pass and gradient graph) times images per second, against the
peak of a large float32 matmul timed in the same run (ratio: the fraction of
peak). Images per second come from the steady-state epochs of ``run_fn``'s
last ``fit`` (not its first epoch, which traces the step and fills the
input cache; for mobilenetv2 the last fit is the fine-tuning one): a
callback added to the Trainer's callbacks times each epoch's training steps,
from the epoch's start to its validation (validation and the checkpoint
after it are not counted). Each case is measured with the Trainer's
defaults, with ``jit_compile`` (XLA) on, and with other thread settings
(a worker process of its own, set before TensorFlow starts), one process
at a time. A quick run measures the 192 px models with their defaults only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench import common
from bench.training_calls import first_records, time_trainer_epochs

ENTRY = "training"


def configure_threads(intra: int, inter: int) -> dict:
    """In a fresh worker, before TensorFlow runs anything: its thread pools."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    return {"intra": intra, "inter": inter}


def count_flops(name: str, image_size: int, unfreeze: bool) -> dict:
    import schema
    from bench import flops

    return flops.model_flops(name, image_size, len(schema.LABELS), unfreeze=unfreeze)


def _seconds(epochs: list[dict], key: str) -> str:
    return ", ".join(f"{epoch[key]:.2f}" for epoch in epochs) + " s"


@dataclasses.dataclass
class Case:
    """One model of "how close to the machine"."""

    label: str
    overrides: dict
    unfreeze: bool  # count the FLOPs with the pretrained base trainable
    train_shards: int  # to train on with the defaults and the thread settings
    # XLA is several times slower on this CPU (0.14x to 0.66x the defaults'
    # images/s at 192 px, BENCHMARKS.md): it trains on the first records of
    # the first shard only, to keep the run short (None: the same shards).
    xla_records: int | None
    timed_epochs: int  # steady epochs timed in a full run; a quick run times one

    def settings(self, quick: bool) -> dict:
        settings = common.default_model_settings(self.overrides)
        timed = 1 if quick else self.timed_epochs
        if settings["name"] == "mobilenetv2":
            # One frozen epoch (the head, on cached features), then fine-tuning:
            # its first epoch traces, the later ones are timed.
            settings.update(
                epochs=1,
                fine_tune_epochs=1 + timed,
                fine_tune_layers=0,
                weights=str(MOBILENET_WEIGHTS) if MOBILENET_WEIGHTS.is_file() else "none",
            )
        else:
            settings.update(epochs=1 + timed)
        return settings


CASES = [
    Case("convnet", {}, False, train_shards=2, xla_records=None, timed_epochs=2),
    Case("squeezenet", {"model.name": "squeezenet"}, False, train_shards=1, xla_records=64, timed_epochs=1),
    Case(
        "mobilenetv2 fine-tuning", {"model.name": "mobilenetv2"}, True, train_shards=1, xla_records=64, timed_epochs=1
    ),
]
# A quick run: the 192 px models with their defaults only, on this many records.
QUICK_RECORDS = 64
MOBILENET_WEIGHTS = common.SHARED_DATA.parent / "weights" / "mobilenet_v2_1.0_224_no_top.h5"
# Evaluation images per epoch of the FLOP/s cases (validation is not timed).
EVAL_RECORDS = 64
# The alternative to TensorFlow's default thread pools (intra-op and
# inter-op: the number of cores each, on this machine 2 and 2).
THREADS = {"intra": 2, "inter": 1}
MATMUL = 2048


def how_close_to_the_machine(
    quick: bool,
    work: Path,
    train_files: list[str],
    eval_files: list[str],
    transform_dirs: dict,
    defaults_side: common.Worker,
    threads_side: common.Worker,
    source: str,
) -> list[dict]:
    """The matmul peak, the FLOPs check and, per case, the achieved FLOP/s
    with the defaults, with XLA and with the other thread settings."""
    from bench import flops

    repeats = 5 if quick else 10
    peaks = [defaults_side.call(flops.matmul_peak, MATMUL, repeats)]
    check = defaults_side.call(flops.mobilenetv2_reference_check)
    measured = []
    for case in CASES:
        settings = case.settings(quick)
        size = int(settings["image_size"])
        shards = train_files[: 1 if quick else case.train_shards]
        if size not in transform_dirs:
            transform_dirs[size] = common.write_transform_graph(shards, size, work / f"transform_{size}")
        counted = defaults_side.call(count_flops, settings["name"], size, case.unfreeze)
        threads = f"threads {THREADS['intra']}/{THREADS['inter']}"
        variants = [
            ("defaults", defaults_side, False, None),
            (threads, threads_side, False, None),
            ("XLA", defaults_side, True, case.xla_records),
        ]
        if quick and case.xla_records:  # a smoke test of the 192 px models
            variants = [("defaults", defaults_side, False, QUICK_RECORDS)]
        runs = {}
        for variant, side, jit, records in variants:
            if records:
                files, data = (
                    first_records(shards[0], records, work / f"train_{records}.gz"),
                    f"first {records} records",
                )
            else:
                files, data = shards, f"{len(shards)} shard(s)"
            out = str(work / f"{case.label}-{variant}".replace(" ", "_").replace("/", "_"))
            runs[variant] = side.call(
                time_trainer_epochs, files, eval_files, transform_dirs[size], {**settings, "jit_compile": jit}, out
            )
            runs[variant]["data"] = data
        measured.append((case, settings, counted, runs))
    peaks.append(defaults_side.call(flops.matmul_peak, MATMUL, repeats))  # the load may have changed meanwhile
    peak = max(peaks, key=lambda p: p["gflops"])

    rows = [
        common.row(
            ENTRY,
            f"peak: float32 matmul {MATMUL}x{MATMUL}",
            peak["gflops"],
            "GFLOP/s",
            note=(
                f"best of {repeats} products (2 n^3 FLOPs each), timed before and after the cases: "
                + ", ".join(f"{p['gflops']:.1f} (median {p['median_gflops']:.1f})" for p in peaks)
                + " GFLOP/s; the baseline of the rows below"
            ),
        ),
        common.row(
            ENTRY,
            "FLOPs count check: MobileNetV2 224 px forward",
            check["counted"] / 1e9,
            "GFLOPs",
            check["published"] / 1e9,
            note="registered FLOPs of Keras' MobileNetV2 1.0 (with its top) against the published 300 M multiply-adds",
        ),
    ]
    for case, settings, counted, runs in measured:
        per_image = counted["training_flops"]
        default_rate = None
        for variant, result in runs.items():
            name = f"{case.label} {settings['image_size']} px, {variant}"
            if "error" in result:
                rows.append(
                    common.row(
                        ENTRY,
                        f"achieved FLOP/s: {name}",
                        None,
                        "GFLOP/s",
                        peak["gflops"],
                        note=f"failed: {result['error']}",
                    )
                )
                continue
            steady = result["fits"][-1][1:]  # the last fit, without its first epoch
            images = sum(epoch["steps"] * int(settings["batch_size"]) for epoch in steady)
            train_seconds = sum(epoch["train_seconds"] for epoch in steady)
            rate = images / train_seconds
            default_rate = rate if variant == "defaults" else default_rate
            versus = (
                f"; {rate / default_rate:.2f}x the defaults' images/s" if default_rate and variant != "defaults" else ""
            )
            note = (
                f"{per_image / 1e9:.3f} GFLOPs per training image (forward {counted['forward_flops'] / 1e9:.3f}, "
                f"x{per_image / counted['forward_flops']:.2f}; {counted['trainable_weights']:,} trainable weights) "
                f"x {rate:.1f} images/s{versus}; steady epochs' training steps {_seconds(steady, 'train_seconds')} "
                f"(whole epochs, with validation: {_seconds(steady, 'epoch_seconds')}; first epoch "
                f"{result['fits'][-1][0]['train_seconds']:.1f} s); batch {settings['batch_size']}, "
                f"{steady[0]['steps']} steps per epoch ({result['data']}), validation on {EVAL_RECORDS}; "
                f"run_fn {result['seconds']:.0f} s; jit_compile {variant == 'XLA'}, threads "
                + (f"intra {THREADS['intra']} inter {THREADS['inter']}" if variant.startswith("threads") else "default")
            )
            rows.append(
                common.row(
                    ENTRY,
                    f"achieved FLOP/s: {name}",
                    per_image * rate / 1e9,
                    "GFLOP/s",
                    peak["gflops"],
                    note=note,
                    images_per_s=round(rate, 2),
                    flops_per_image=per_image,
                    variant=variant,
                )
            )
    return rows

"""Was this pushed version blessed? Asked before a version is promoted.

The push manifest names the Evaluator's blessing; the blessing folder on disk
must say BLESSED and, when ML Metadata is at hand, its blessing artifact must
agree and be about this very model.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import EXIT_NOT_BLESSED, FlowersError
from pipeline.serving import versions as pushed_versions


class NotBlessed(FlowersError):
    """The version is not blessed, or its blessing cannot be shown (exit status 3)."""

    exit_status = EXIT_NOT_BLESSED


def check_blessed(version_dir: Path, metadata_path: Path | None) -> dict:
    """The version's push manifest, if the version was blessed; else NotBlessed.

    The Evaluator's blessing folder must say BLESSED and, when ML Metadata is
    at hand, its blessing artifact must be blessed and be about this model.
    """
    try:
        manifest = pushed_versions.read_manifest(version_dir)
    except pushed_versions.ServingDirError as error:
        raise NotBlessed(f"{error}; cannot tell whether it was blessed") from None
    if manifest is None:
        raise NotBlessed(
            f"{version_dir}: no push manifest ({pushed_versions.MANIFEST_PATH}); "
            "only versions pushed by the pipeline, with their blessing, can be promoted"
        )
    blessing_uri = manifest.get("blessing_uri")
    if not blessing_uri:
        raise NotBlessed(f"{version_dir / pushed_versions.MANIFEST_PATH}: names no blessing (blessing_uri)")
    verdict = pushed_versions.blessing_on_disk(blessing_uri)
    if verdict is None:
        raise NotBlessed(
            f"{blessing_uri}: the blessing of version {version_dir.name} is missing "
            f"(no {pushed_versions.BLESSED_FILE} file); it cannot be checked"
        )
    if verdict is False:
        raise NotBlessed(f"{blessing_uri}: the Evaluator did not bless version {version_dir.name} (NOT_BLESSED)")
    if metadata_path is not None and metadata_path.is_file() and metadata_path.stat().st_size > 0:
        from pipeline.serving.lineage import LineageReader  # ML Metadata, only when there is a store

        # A damaged store raises DamagedStore (exit 2): the blessing cannot be confirmed.
        blessing = LineageReader.open(metadata_path).blessing(blessing_uri)
        if blessing is not None and not blessing.blessed:
            raise NotBlessed(f"{metadata_path}: ML Metadata records {blessing_uri} as not blessed")
        model_id = manifest.get("model_artifact_id")
        if blessing is not None and blessing.model_artifact_id not in (None, model_id):
            raise NotBlessed(
                f"{blessing_uri}: this blessing is for model artifact {blessing.model_artifact_id}, "
                f"but version {version_dir.name} holds model artifact {model_id}"
            )
    return manifest

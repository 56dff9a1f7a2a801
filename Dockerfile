# The pipeline's container image for Vertex AI Pipelines (every component),
# Vertex AI Training (the Trainer, on CPU or GPUs) and Dataflow (the SDK
# container of the Beam workers). The base image carries the whole TFX 1.16
# stack and Beam's worker entrypoint; this adds the project's code without
# replacing any of it. For TPUs, Dockerfile.tpu builds on this image.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/flowers-tfx:TAG .
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# Keras 2 everywhere (TensorFlow Transform needs it), before TF is imported.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONDONTWRITEBYTECODE=1

# The compiled pipeline names files by their path here (ImportSchemaGen reads
# /pipeline/schema/schema.pbtxt): keep in step with pipeline/vertex_specs.py.
WORKDIR /pipeline

# The few libraries the project adds to the base image's stack.
RUN python -m pip install --no-cache-dir "pillow>=10,<12" "matplotlib>=3.8,<4" "tomli>=2" "pyyaml>=6"

COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schema/ schema/
# --no-deps: keep the base image's TFX, TensorFlow and Beam exactly as they are.
RUN python -m pip install --no-cache-dir --no-deps .

# Fail the build, not a pipeline run, when the installed code cannot be imported
# (from /, so that the installed package is what is checked).
RUN cd / && python -c "import components.trainer.training, components.model_registry_pusher.component, components.run_notifier.component, pipeline.dag" \
    && test -f /pipeline/schema/schema.pbtxt

# Run as an unprivileged user: nothing in the pipeline needs root. (Vertex AI
# and Dataflow start the image's entrypoint as this user; credentials come
# from the job's service account through the metadata server, never files.)
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin flowers
USER flowers

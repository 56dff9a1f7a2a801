# The pipeline's container image for Kubeflow / Vertex AI Pipelines (and as
# the SDK container of Dataflow workers). The base image carries the whole
# TFX 1.16 stack; this adds the project's code without replacing any of it.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# Keras 2 everywhere (TensorFlow Transform needs it), before TF is imported.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /pipeline

# The few libraries the project adds to the base image's stack.
RUN python -m pip install --no-cache-dir "pillow>=10,<12" "matplotlib>=3.8,<4" "tomli>=2" "pyyaml>=6"

COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schema/ schema/
# --no-deps: keep the base image's TFX, TensorFlow and Beam exactly as they are.
RUN python -m pip install --no-cache-dir --no-deps .

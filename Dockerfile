# The pipeline's container image: every task of a Vertex AI Pipelines run,
# the Trainer's Vertex AI Training job and the Dataflow workers (as their SDK
# container) run in it. It holds exactly uv.lock's packages for Python 3.10,
# the project installed from this checkout, and Beam's SDK worker boot.
#
#   flowers-tfx image build --tag T          # docker, podman or buildah, whichever is here
#   docker build -t T .                      # the same by hand (BuildKit)
#   docker build --build-arg VARIANT=gpu -t T-gpu .   # with TensorFlow's CUDA libraries
#
# On a machine that cannot pull the bases, scripts/standin-images.sh makes
# stand-ins, used only when named: --build-arg BASE_IMAGE=localhost/standin/...

# python:3.10-slim-bookworm, pinned by digest so a moved tag cannot change the
# image (refresh: `docker buildx imagetools inspect python:3.10-slim-bookworm`).
ARG BASE_IMAGE=python:3.10-slim-bookworm@sha256:68d914ec641a0b69267ce65184d000a2bc3a9ee2590ab702b82250ab2385735a
# Beam's SDK image of the locked Beam version: only its /opt/apache/beam is used.
ARG BEAM_SDK_IMAGE=apache/beam_python3.10_sdk:2.59.0

FROM ${BEAM_SDK_IMAGE} AS beam_sdk

# ---------------------------------------------------------------- the build
FROM ${BASE_IMAGE} AS build
# cpu, or gpu (adds the lock's `gpu` extra: tensorflow[and-cuda], CUDA's wheels).
ARG VARIANT=cpu
# Keep in step with scripts/bootstrap.sh.
ARG UV_VERSION=0.13.9
# Where a build machine behind a TLS-inspecting proxy mounts its CA bundle for
# the download steps only (buildah/podman -v FILE:/run/build-ca.pem:ro); it is
# never copied into a layer, and no ENV names it.
ARG BUILD_CA=/run/build-ca.pem
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.10 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE_DIR_WARNING=1

# Ten locked packages come as sources only; pyfarmhash and crcmod compile C++.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
RUN if [ -s "$BUILD_CA" ]; then export SSL_CERT_FILE="$BUILD_CA" PIP_CERT="$BUILD_CA"; fi \
    && python3 -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --target /opt/uv "uv==${UV_VERSION}"

WORKDIR /src
# The dependencies, from the lock alone: a layer that stays cached until
# uv.lock changes. Then the list of packages the lock gives for this
# environment, which `flowers-tfx image check` compares with.
COPY pyproject.toml uv.lock ./
RUN if [ -s "$BUILD_CA" ]; then export SSL_CERT_FILE="$BUILD_CA"; fi \
    && extra="$([ "$VARIANT" = gpu ] && echo --extra=gpu || true)" \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project $extra \
    && /opt/uv/bin/uv export --frozen --no-dev --no-hashes --no-emit-project --no-header $extra \
        --output-file /src/requirements.lock.txt >/dev/null \
    && rm -f /opt/venv/.lock && chmod -R go-w /opt/venv

FROM build AS project
# The project as a wheel, installed into the image's environment in a layer of
# its own: a change to the code leaves the large layer of dependencies as it is.
# (An ARG ends with its stage: the build backend, hatchling, is downloaded.)
ARG BUILD_CA=/run/build-ca.pem
COPY README.md ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY schema/ schema/
RUN if [ -s "$BUILD_CA" ]; then export SSL_CERT_FILE="$BUILD_CA"; fi \
    && /opt/uv/bin/uv build --wheel --out-dir /src/dist >/dev/null

# ---------------------------------------------------------------- the image
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG BEAM_SDK_IMAGE
ARG VARIANT=cpu
# Beam's SDK worker boot: Dataflow starts the image's entrypoint as its SDK
# harness. Vertex AI tasks and training jobs give their own command.
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
COPY --from=build /opt/venv /opt/venv
COPY --from=project /src/dist/ /tmp/dist/
# The base's own pip installs the wheel (no index: the dependencies are
# there), compiled to bytecode like the rest. No chmod -R here: changing a
# file's mode in a later layer copies the whole file (it doubled the image);
# the build stage made the environment read-only for all but root.
RUN /usr/local/bin/python3 -m pip --python /opt/venv/bin/python install --no-deps --no-index \
        --disable-pip-version-check --root-user-action=ignore /tmp/dist/*.whl \
    && rm -rf /tmp/dist
# The compiled spec names files by their path here (ImportSchemaGen reads
# /pipeline/schema/schema.pbtxt): keep in step with pipeline/vertex_specs.py.
COPY --from=build /src/pyproject.toml /src/uv.lock /src/requirements.lock.txt /pipeline/
COPY --from=project /src/README.md /pipeline/
COPY --from=project /src/pipeline /pipeline/pipeline
COPY --from=project /src/components /pipeline/components
COPY --from=project /src/schema /pipeline/schema

# TensorFlow's environment as components/shared/tf_environment.py sets it
# (Keras 2, which TensorFlow Transform needs; quiet C++ logs), for any
# process of the image, before TensorFlow loads.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    GRPC_VERBOSITY=ERROR \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1

# Fail the build, not a pipeline run, when the installed code cannot be
# imported (from /, so the installed package is what is checked).
RUN cd / && python -c "import components.trainer.training, components.model_registry_pusher.component, components.run_notifier.component, pipeline.dag" \
    && test -f /pipeline/schema/schema.pbtxt

# An unprivileged user: nothing in the pipeline needs root, and nothing of
# the image is writable by it but its home and /tmp.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin flowers
USER flowers
WORKDIR /pipeline
ENTRYPOINT ["/opt/apache/beam/boot"]

# Labels last: the commit changes with every build, and what follows a changed
# step is built again.
ARG SOURCE=unknown
ARG REVISION=unknown
ARG UV_LOCK_SHA256=unknown
LABEL org.opencontainers.image.title="flowers-tfx (${VARIANT})" \
      org.opencontainers.image.description="TFX 1.16 flowers pipeline: every Vertex AI task, the training job and Dataflow's SDK container" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      dev.flowers-tfx.beam-sdk-image="${BEAM_SDK_IMAGE}" \
      dev.flowers-tfx.uv-lock.sha256="${UV_LOCK_SHA256}" \
      dev.flowers-tfx.variant="${VARIANT}"

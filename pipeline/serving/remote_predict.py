"""Classify image files with a model that is served elsewhere: a Vertex AI
endpoint, or TF Serving's REST API.

Both take the exported signature's ``instances`` format, the image's bytes
in base64 under ``image_bytes`` (``{"b64": ...}``), and answer with the
signature's outputs. Each image is sent in a request of its own: Vertex AI
splits traffic per request, so a canary that takes 10% of the traffic
answers about one image in ten, and Vertex AI says which one did
(``deployedModelId``). Plain HTTP (urllib), so that the tests, or anyone,
can point it at a stand-in: ``FLOWERS_VERTEX_API_URL`` replaces Vertex AI's
base URL.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.errors import FlowersError, Refused

API_URL_VARIABLE = "FLOWERS_VERTEX_API_URL"
SERVING_INPUT = "image_bytes"  # components/trainer/signatures.py (which loads TensorFlow)
DEFAULT_TIMEOUT = 30.0


@dataclass
class RemoteAnswer:
    """What the server said about one file, and which model said it."""

    file: str
    class_name: str | None = None
    probability: float | None = None
    top: list[dict] = field(default_factory=list)  # [{"class", "probability"}], best first
    answered_by: str | None = None  # the deployed model id (Vertex AI) or the server's model and version
    model: str | None = None  # the deployed model's display name, model and version when known
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def vertex_api_url(region: str) -> str:
    """Vertex AI's regional REST base URL, or the one ``FLOWERS_VERTEX_API_URL`` names."""
    return (os.environ.get(API_URL_VARIABLE) or f"https://{region}-aiplatform.googleapis.com").rstrip("/")


def access_token() -> str:
    """An OAuth token from Application Default Credentials."""
    import google.auth
    import google.auth.transport.requests
    from google.auth import exceptions as auth_exceptions

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
    except auth_exceptions.GoogleAuthError as error:
        raise FlowersError(
            f"no Google Cloud credentials ({error}); run: gcloud auth application-default login"
        ) from None
    return credentials.token


def instance(data: bytes) -> dict:
    return {SERVING_INPUT: {"b64": base64.b64encode(data).decode("ascii")}}


def _call(url: str, body: dict | None, token: str | None, timeout: float) -> dict:
    """The JSON answer of a GET (no body) or POST; HTTPError carries the server's reason."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError:
        raise  # the server answered: the caller decides what its refusal means
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        raise Refused(f"{url.split('?')[0]}: no answer ({getattr(error, 'reason', error)})") from None


def _reason(error: urllib.error.HTTPError) -> str:
    """The server's own words: Vertex AI's ``error.message``, TF Serving's ``error``."""
    text = error.read().decode(errors="replace")
    try:
        body = json.loads(text)
        found = body.get("error")
        text = found.get("message", text) if isinstance(found, dict) else (found or text)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {error.code}: {text.strip()[:500]}"


def _top(prediction, labels: list[str], top_k: int) -> tuple[list[dict], str | None, float | None]:
    """The best classes of one prediction (the signature's outputs for one instance)."""
    if isinstance(prediction, dict):
        probabilities = prediction.get("probabilities") or []
        name = prediction.get("class_name")
    else:  # a model with one output answers with the bare list
        probabilities, name = prediction, None
    order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:top_k]
    top = [{"class": labels[i] if i < len(labels) else str(i), "probability": probabilities[i]} for i in order]
    name = name or (top[0]["class"] if top else None)
    return top, name, (probabilities[order[0]] if order else None)


def _classify_each(
    files: list[Path], url: str, token: str | None, timeout: float, top_k: int, labels: list[str], who
) -> list[RemoteAnswer]:
    """One request per file; ``who(response)`` names the model that answered."""
    answers = []
    for path in files:
        answer = RemoteAnswer(file=str(path))
        answers.append(answer)
        try:
            data = path.read_bytes()
        except OSError as error:
            answer.error = error.strerror or str(error)
            continue
        try:
            response = _call(url, {"instances": [instance(data)]}, token, timeout)
        except urllib.error.HTTPError as error:
            answer.error = _reason(error)
            continue
        predictions = response.get("predictions") or [None]
        answer.top, answer.class_name, answer.probability = _top(predictions[0] or [], labels, top_k)
        answer.answered_by, answer.model = who(response)
    return answers


def find_vertex_endpoint(base: str, project: str, region: str, name_or_id: str, token, timeout: float) -> dict:
    """The endpoint resource (with its deployed models and traffic split), by ID or display name."""
    parent = f"{base}/v1/projects/{project}/locations/{region}/endpoints"
    try:
        if name_or_id.isdigit():
            return _call(f"{parent}/{name_or_id}", None, token, timeout)
        query = urllib.parse.urlencode({"filter": f'display_name="{name_or_id}"'})
        found = _call(f"{parent}?{query}", None, token, timeout).get("endpoints") or []
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise FlowersError(f"no endpoint {name_or_id} in project {project}, region {region}") from None
        raise Refused(f"endpoint {name_or_id}: {_reason(error)}") from None
    if not found:
        raise FlowersError(f"no endpoint named {name_or_id!r} in project {project}, region {region}")
    return found[0]


def predict_vertex(
    files: list[Path],
    project: str,
    region: str,
    endpoint: str,
    labels: list[str],
    top_k: int = 3,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[dict, list[RemoteAnswer]]:
    """The endpoint and each file's answer, with the deployed model that gave it."""
    base, token = vertex_api_url(region), access_token()
    resource = find_vertex_endpoint(base, project, region, endpoint, token, timeout)
    deployed = {model.get("id"): model for model in resource.get("deployedModels", [])}

    def who(response: dict) -> tuple[str | None, str | None]:
        model_id = response.get("deployedModelId")
        known = deployed.get(model_id, {})
        name = known.get("displayName") or response.get("modelDisplayName")
        version = response.get("modelVersionId") or known.get("modelVersionId")
        described = " ".join(part for part in (name, f"version {version}" if version else None) if part)
        return model_id, described or None

    url = f"{base}/v1/{resource['name']}:predict"
    return resource, _classify_each(files, url, token, timeout, top_k, labels, who)


def predict_tf_serving(
    files: list[Path],
    server: str,
    model_name: str,
    labels: list[str],
    top_k: int = 3,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[dict, list[RemoteAnswer]]:
    """TF Serving's model status and each file's answer. TF Serving does not
    say which version answered; with one version AVAILABLE it is that one."""
    base = f"{server.rstrip('/')}/v1/models/{model_name}"
    try:
        status = _call(base, None, None, timeout)
    except urllib.error.HTTPError as error:
        raise Refused(f"{base}: {_reason(error)}") from None
    available = [
        entry.get("version") for entry in status.get("model_version_status", []) if entry.get("state") == "AVAILABLE"
    ]
    version = available[0] if len(available) == 1 else None
    answered_by = f"{model_name} version {version}" if version else model_name
    return status, _classify_each(
        files, f"{base}:predict", None, timeout, top_k, labels, lambda response: (answered_by, None)
    )


def format_answers(answers: list[RemoteAnswer]) -> str:
    """A line per file (its best class and who answered), then the tally per model."""
    width = max((len(answer.file) for answer in answers), default=0)
    lines, tally = [], {}
    for answer in answers:
        if answer.error:
            continue
        scores = "  ".join(f"{entry['class']} {entry['probability']:.3f}" for entry in answer.top)
        who = (answer.answered_by or "unknown") + (f" ({answer.model})" if answer.model else "")
        lines.append(f"{answer.file:<{width}}  {scores}  <- {who}")
        tally[who] = tally.get(who, 0) + 1
    if tally:
        lines.append("answered by: " + ", ".join(f"{who}: {count}" for who, count in tally.items()))
    return "\n".join(lines) or "no image was classified"

"""The flower record format, checked: what is wrong with one serialized record.

The format (every feature, its type and shape) is the curated schema in
``schema/schema.pbtxt`` and the names in ``components/records/features.py``.
ImportExampleGen's screening (``components/example_gen/``) and ``flowers-tfx
data inspect`` both judge records with :func:`parse_record`, so a record the
pipeline refuses is one the data tools report, in the same words.

Before any decoder sees an image, its width and height are read from its
header and checked against the pixel budget (``components/records/image_budget.py``):
a record whose image is over it is reported like any other bad record, and
the image is never decoded.
"""

from __future__ import annotations

import tensorflow as tf
from google.protobuf.message import DecodeError
from PIL import UnidentifiedImageError

from components.records.features import CLASS_NAME, IMAGE, LABEL, ONE_HOT, RECORD_FEATURES, SIZE
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS, ImageBudgetError, header_problem, open_image
from schema import LABELS


def _values(example: tf.train.Example, key: str, kind: str, problems: list[str]) -> list | None:
    """The values of feature ``key`` (None when absent); a wrong list type is a problem."""
    features = example.features.feature
    if key not in features:
        return None
    found = features[key].WhichOneof("kind")
    if found != kind:
        problems.append(f"{key} has type {found or 'none (empty feature)'}, expected {kind}")
        return None
    return list(getattr(features[key], kind).value)


def _check_image(image: bytes, size: list[int] | None, problems: list[str], max_pixels: int) -> tuple[int, int] | None:
    """Decode the image fully; append what is wrong to ``problems``; return (height, width).

    The header has already been checked against the budget; ``open_image``
    also measures formats other than JPEG, PNG, GIF and BMP before decoding.
    """
    try:
        with open_image(image, max_pixels) as picture:
            picture.load()
            image_format, mode = picture.format, picture.mode
            width, height = picture.size
    except UnidentifiedImageError:
        problems.append("image does not decode: not an image format Pillow can read")
        return None
    except ImageBudgetError as error:
        problems.append(str(error))
        return None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError... for damaged data
        problems.append(f"image does not decode: {error}")
        return None
    if image_format != "JPEG":
        problems.append(f"image is {image_format}, expected JPEG")
    if mode != "RGB":
        problems.append(f"image mode is {mode}, expected RGB")
    if size is not None and len(size) == 2 and list(size) != [height, width]:
        problems.append(f"size {list(size)} does not match the image's [height, width] [{height}, {width}]")
    return height, width


def parse_record(serialized: bytes, check_image: bool = True, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> dict:
    """Read one serialized record and say everything that is wrong with it.

    ``image`` and ``class`` are required; ``label``, ``size`` and
    ``one_hot_class`` may be absent (as in ``schema/schema.pbtxt``: the
    pipeline only needs the first two) but must agree with the rest when
    present.
    Returns a dict with the feature values (None when a feature is missing or
    has the wrong type): ``image`` (bytes), ``class`` (int), ``label`` (str),
    ``size`` (list of int), ``one_hot_class`` (list of float); plus
    ``image_size`` ((height, width) from decoding the JPEG, None if not
    decoded), ``image_refused`` (True when the image's header already rules
    out decoding it: over ``max_pixels`` pixels, or a damaged header) and
    ``problems``, a list of readable sentences, empty for a good record.
    With ``check_image=False`` the JPEG is not decoded (faster); its header
    is still checked against the budget, which costs next to nothing.
    """
    parsed = {key: None for key in RECORD_FEATURES}
    parsed["image_size"] = None
    parsed["image_refused"] = False
    problems: list[str] = []
    parsed["problems"] = problems
    try:
        example = tf.train.Example.FromString(serialized)
    except DecodeError as error:
        problems.append(f"not a tf.train.Example: {error}")
        return parsed

    for required in (IMAGE, LABEL):
        if required not in example.features.feature:
            problems.append(f"{required} missing")
    images = _values(example, IMAGE, "bytes_list", problems)
    classes = _values(example, LABEL, "int64_list", problems)
    labels = _values(example, CLASS_NAME, "bytes_list", problems)
    size = _values(example, SIZE, "int64_list", problems)
    one_hot = _values(example, ONE_HOT, "float_list", problems)

    if images is not None and (len(images) != 1 or not images[0]):
        problems.append(f"image has {len(images)} values, expected one non-empty JPEG")
    elif images is not None:
        parsed[IMAGE] = images[0]

    class_id = None
    if classes is not None and len(classes) != 1:
        problems.append(f"class has {len(classes)} values, expected 1")
    elif classes is None:
        pass
    elif not 0 <= classes[0] < len(LABELS):
        problems.append(f"class {classes[0]} out of range 0..{len(LABELS) - 1}")
        parsed[LABEL] = classes[0]
    else:
        class_id = parsed[LABEL] = classes[0]

    if labels is not None and len(labels) != 1:
        problems.append(f"label has {len(labels)} values, expected 1")
    elif labels is not None:
        label = parsed[CLASS_NAME] = labels[0].decode("utf-8", errors="replace")
        if class_id is not None and label != LABELS[class_id]:
            problems.append(f"label {label!r} does not match class {class_id} ({LABELS[class_id]!r})")

    if size is not None:
        parsed[SIZE] = size
        if len(size) != 2:
            problems.append(f"size has {len(size)} values, expected 2 ([height, width])")

    if one_hot is not None:
        parsed[ONE_HOT] = one_hot
        expected = [1.0 if i == class_id else 0.0 for i in range(len(LABELS))]
        if len(one_hot) != len(LABELS):
            problems.append(f"one_hot_class has {len(one_hot)} values, expected {len(LABELS)}")
        elif class_id is not None and one_hot != expected:
            problems.append(f"one_hot_class {one_hot} does not match class {class_id}")

    if parsed[IMAGE] is not None:
        refused = header_problem(parsed[IMAGE], max_pixels)
        if refused:
            problems.append(refused)
            parsed["image_refused"] = True
        elif check_image:
            parsed["image_size"] = _check_image(parsed[IMAGE], size, problems, max_pixels)
    return parsed

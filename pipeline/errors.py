"""The one way a problem becomes a message and an exit status.

Code that finds a problem a user can fix (a configuration key, a data path,
a version that may not be promoted) raises a :class:`FlowersError` subclass
with a message that names the file or key and says what is wrong. The
command line catches it once, in :func:`run_command` (which ``flowers-tfx``
and the standalone ``data`` command call), prints
``error: <message>`` (no traceback) and exits with the error's status. One
table for every command (``EXIT_STATUSES``, shown by ``flowers-tfx --help``
and in the README):

    0    done: pushed, promoted, or nothing to do
    1    a step failed, or was refused: a component, files skipped, a request
         a cloud service turned down, a busy directory
    2    bad arguments, configuration, data or paths
    3    finished, but the model was not blessed (nothing pushed), or a
         promotion refused because the version is not (shown to be) blessed
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR, EXIT_NOT_BLESSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_STATUSES = """exit status (every command):
  0    done: pushed, promoted, or nothing to do
  1    a step failed (a component, a task, a request refused, a busy directory)
  2    bad arguments, configuration, data or paths
  3    finished, but the model was not blessed (nothing pushed), or a promotion
       refused because the version is not (shown to be) blessed
  130  interrupted
"""


class FlowersError(Exception):
    """A problem the user can fix; ``str()`` is the message to show."""

    exit_status = EXIT_ERROR
    # Put before the message on the error line, e.g. "configuration: ".
    label = ""


class Refused(FlowersError):
    """The request is understood but not carried out (exit status 1)."""

    exit_status = EXIT_PROBLEMS


class NotBlessed(Refused):
    """Refused because the model is not blessed (exit status 3)."""

    exit_status = EXIT_NOT_BLESSED


def from_library(error: Exception) -> FlowersError | None:
    """The error of a library call as a FlowersError, when it is one a user
    can act on (a path, a TensorFlow read, Google Cloud credentials or a
    refused request); None for anything else, which is a bug to show whole.

    Libraries are looked up in ``sys.modules`` only: a command that never
    loaded TensorFlow or the Google client does not load it here.
    """
    if isinstance(error, OSError):
        if error.filename and error.strerror:
            return FlowersError(f"{error.filename}: {error.strerror}")
        return FlowersError(str(error))
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and isinstance(error, tensorflow.errors.OpError):
        from components.shared.common import tf_error_text

        return FlowersError(tf_error_text(error.message))
    auth = sys.modules.get("google.auth.exceptions")
    if auth is not None and isinstance(error, auth.GoogleAuthError):
        return FlowersError(
            f"Google Cloud credentials: {error}\n  (run 'gcloud auth application-default login' to renew them)"
        )
    api = sys.modules.get("google.api_core.exceptions")
    if api is not None and isinstance(error, api.GoogleAPIError):
        return Refused(f"Vertex AI refused the request: {error}")
    return None


def run_command(args: argparse.Namespace) -> int:
    """Runs the parsed command; the one place where errors become exit statuses.

    A FlowersError (or a library error a user can act on, see
    ``from_library`` above) prints ``error: <message>`` and returns
    its status; anything else is a bug and keeps its traceback.
    """
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - sorted just below
        known = error if isinstance(error, FlowersError) else from_library(error)
        if known is None:
            raise
        print(f"error: {known.label}{known}", file=sys.stderr)
        return known.exit_status

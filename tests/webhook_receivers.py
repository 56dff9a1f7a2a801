"""Webhook receivers for the tests: loopback servers on free ports, stopped
when the ``with`` block ends, an address where nothing listens, and the
fields every posted outcome carries."""

import http.server
import json
import socket
import threading
import time
from contextlib import contextmanager

# What a webhook receives of a run's outcome, at least (pipeline/reporting/outcome.py).
FIELDS = {
    "pipeline",
    "run_id",
    "state",
    "failed_component",
    "error",
    "blessed",
    "reasons",
    "pushed_version",
    "accuracy",
    "text",
}


@contextmanager
def webhook_server(delay: float = 0.0):
    """A loopback server that records each POSTed JSON body; ``delay`` seconds before it answers."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            time.sleep(delay)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/T000/SECRET?token=abc", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook/SECRET"
    finally:
        listener.close()


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/SECRET"

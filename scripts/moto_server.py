"""moto server with a faithful SQS under concurrency.

moto's SQS backend is not thread-safe, and its threaded server runs requests in
parallel: under several concurrent consumers a deleted message can come back after its
visibility timeout, and two concurrent receives can both hand out messages of the same
FIFO message group (each computes the in-flight groups before the other marks its
messages received). Real SQS does neither, and the tests of per-customer order across
replicas rely on both. This wrapper serialises every SQS backend operation under one
re-entrant lock; long polls wait outside the lock (polling every 50 ms), so one client's
20 s wait never blocks the others.

Usage: moto_server.py HOST PORT  (as `moto_server -H HOST -p PORT`).
"""

import functools
import sys
import threading
import time

from moto.sqs.models import SQSBackend

LOCK = threading.RLock()
POLL_EVERY = 0.05

_receive = SQSBackend.receive_message


def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                    message_attribute_names=None):
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with LOCK:
            messages = _receive(self, queue_name, count, 0, visibility_timeout,
                                message_attribute_names)
        if messages or time.monotonic() >= deadline:
            return messages
        time.sleep(POLL_EVERY)


def locked(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with LOCK:
            return method(*args, **kwargs)
    return wrapper


SQSBackend.receive_message = receive_message
for name in ("send_message", "send_message_batch", "delete_message", "delete_message_batch",
             "change_message_visibility", "change_message_visibility_batch", "purge_queue",
             "create_queue", "delete_queue", "get_queue_attributes", "set_queue_attributes"):
    setattr(SQSBackend, name, locked(getattr(SQSBackend, name)))

if __name__ == "__main__":
    from moto.server import main

    host, port = sys.argv[1], sys.argv[2]
    main(["-H", host, "-p", port])

"""moto server with a faithful SQS under concurrency.

moto's SQS backend is not thread-safe, and its threaded server runs requests in
parallel: under several concurrent consumers a deleted message can come back after its
visibility timeout, and two concurrent receives can both hand out messages of the same
FIFO message group (each computes the in-flight groups before the other marks its
messages received). Real SQS does neither, and the tests of per-customer order across
replicas rely on both. This wrapper serialises every SQS backend operation under one
re-entrant lock. A long poll waits on a condition of that lock (which the wait
releases, so one client's 20 s wait never blocks the others) and is woken by every
change to its queue that can make a message receivable: a send, a delete (it frees a
FIFO group), a visibility change. moto's own long poll instead re-checks a copy of the in-flight groups
taken when the poll began, so a group freed during the poll stays blocked until the poll
returns for another reason, and it spins while only blocked messages are visible. The
first version of this wrapper polled every 50 ms instead; both put tens of milliseconds
per queue hop into the latency figures that real SQS does not (docs/performance.md).
A message whose visibility timeout runs out wakes no one: polls look again every
RECHECK at least.

moto's request routing is also made cheaper, without changing what it routes where: for
every request its dispatcher lists moto's package directory and tries its URL patterns,
under a lock all requests share, which made that lock the busiest place in moto under the
FIFO stage's request rate (a `py-spy` profile). The module list never changes while the
server runs, and a host always maps to the same backend, so both are remembered.

Usage: moto_server.py HOST PORT  (as `moto_server -H HOST -p PORT`).
"""

import functools
import sys
import threading
import time

from moto.sqs.models import SQSBackend

LOCK = threading.RLock()
# queue name -> the condition its long polls wait on.
CHANGED = {}
RECHECK = 0.25

_receive = SQSBackend.receive_message


def changed(queue_name):
    """The condition a long poll on `queue_name` waits on (created under LOCK)."""
    cond = CHANGED.get(queue_name)
    if cond is None:
        cond = CHANGED[queue_name] = threading.Condition(LOCK)
    return cond


def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                    message_attribute_names=None):
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    with LOCK:
        while True:
            messages = _receive(self, queue_name, count, 0, visibility_timeout,
                                message_attribute_names)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return messages
            changed(queue_name).wait(min(left, RECHECK))


def locked(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with LOCK:
            return method(*args, **kwargs)
    return wrapper


def waking(method):
    """`method` under LOCK, then the long polls of its queue woken. Only that queue's:
    each woken poll scans its queue under the lock, and waking every poll on every change
    kept the lock busy enough to add hundreds of milliseconds per hop."""
    @functools.wraps(method)
    def wrapper(self, queue_name, *args, **kwargs):
        with LOCK:
            try:
                return method(self, queue_name, *args, **kwargs)
            finally:
                changed(queue_name).notify_all()
    return wrapper


SQSBackend.receive_message = receive_message
for name in ("send_message", "send_message_batch", "delete_message", "delete_message_batch",
             "change_message_visibility", "change_message_visibility_batch", "purge_queue"):
    setattr(SQSBackend, name, waking(getattr(SQSBackend, name)))
for name in ("create_queue", "delete_queue", "get_queue_attributes", "set_queue_attributes"):
    setattr(SQSBackend, name, locked(getattr(SQSBackend, name)))


def remember_routing():
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    find = DomainDispatcherApplication.get_backend_for_host
    known = {}

    def get_backend_for_host(self, host):
        if host not in known:
            known[host] = find(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


remember_routing()

if __name__ == "__main__":
    from moto.server import main

    host, port = sys.argv[1], sys.argv[2]
    main(["-H", host, "-p", port])

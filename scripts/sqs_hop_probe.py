"""What one SQS queue hop costs on an emulator, and whether a FIFO long poll sees a group
freed while it waits (docs/performance.md).

    .venv/bin/python scripts/sqs_hop_probe.py http://127.0.0.1:PORT

Prints the send -> receive time of 30 messages sent 100 ms apart to a long-polling
consumer (standard and FIFO queue), then starts a long poll while a FIFO group's first
message is in flight, deletes that message, and prints when the poll returned the next
one. Real SQS returns it at once; stock moto's poll keeps its start-time view of the
in-flight groups and returns empty at the end of its wait.
"""

import sys
import threading
import time

import boto3

sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")


def new_queue(kind):
    fifo = kind == "fifo"
    name = "hop-%s-%d%s" % (kind, time.time_ns(), ".fifo" if fifo else "")
    attrs = {"FifoQueue": "true"} if fifo else {}
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


def hop(kind, n=30):
    url, lat = new_queue(kind), []

    def consume():
        while len(lat) < n:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=20)
            for m in got.get("Messages", []):
                lat.append(time.time() * 1000 - float(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.3)
    for i in range(n):
        fifo = {"MessageGroupId": "g%d" % (i % 3), "MessageDeduplicationId": "d%d" % i}
        sqs.send_message(QueueUrl=url, MessageBody=str(time.time() * 1000),
                         **(fifo if kind == "fifo" else {}))
        time.sleep(0.1)
    consumer.join()
    lat.sort()
    print("%-8s send -> receive: p50 %.1f ms, max %.1f ms" % (kind, lat[n // 2], lat[-1]))


def freed_group():
    url = new_queue("fifo")
    for i in range(2):
        sqs.send_message(QueueUrl=url, MessageBody="g-%d" % i, MessageGroupId="g",
                         MessageDeduplicationId="g%d" % i)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    got = {}

    def poll():
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)
        got["bodies"], got["at"] = [m["Body"] for m in out.get("Messages", [])], time.time()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    deleted = time.time()
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    poller.join()
    print("FIFO group freed during a 5 s poll: it returned %s %.0f ms after the delete"
          % (got["bodies"], (got["at"] - deleted) * 1000))


hop("standard")
hop("fifo")
freed_group()

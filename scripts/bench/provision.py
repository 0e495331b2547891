"""Creates one set of the router's AWS resources in an emulator (moto) for a benchmark
run and prints them as JSON: queues with their dead-letter queues (redrive after 10
receives), the EUM and Connect-streaming SNS topics subscribed to them, the session table
(reference schema: contactId, GSI customerId-index, TTL date), the dedupe table, and the
reference sample's message buffer table.

Usage: provision.py ENDPOINT NAME   (ENDPOINT must be a loopback URL)
"""

import json
import sys
from urllib.parse import urlparse

import boto3

endpoint, name = sys.argv[1], sys.argv[2]
host = urlparse(endpoint).hostname
if host not in ("127.0.0.1", "localhost", "::1") and not (host or "").startswith("127."):
    sys.exit(f"{endpoint}: benchmarks only talk to loopback addresses")

session = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
)
sqs = session.client("sqs", endpoint_url=endpoint)
sns = session.client("sns", endpoint_url=endpoint)
ddb = session.client("dynamodb", endpoint_url=endpoint)


def queue(qname, dlq_arn=None):
    attributes = {"VisibilityTimeout": "30"}
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "10"}
        )
    url = sqs.create_queue(QueueName=qname, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def topic_to_queue(tname, queue_url, queue_arn):
    arn = sns.create_topic(Name=tname)["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return arn


out = {}
for side in ("inbound", "connect"):
    dlq_url, dlq_arn = queue(f"{name}-{side}-dlq")
    url, arn = queue(f"{name}-{side}", dlq_arn)
    out[f"{side}_queue_url"], out[f"{side}_dlq_url"] = url, dlq_url
    out[f"{side}_topic_arn"] = topic_to_queue(f"{name}-{side}-topic", url, arn)

ddb.create_table(
    TableName=f"{name}-sessions",
    AttributeDefinitions=[
        {"AttributeName": a, "AttributeType": "S"} for a in ("contactId", "customerId", "channel")
    ],
    KeySchema=[{"AttributeName": "contactId", "KeyType": "HASH"}],
    GlobalSecondaryIndexes=[
        {
            "IndexName": "customerId-index",
            "KeySchema": [
                {"AttributeName": "customerId", "KeyType": "HASH"},
                {"AttributeName": "channel", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    BillingMode="PAY_PER_REQUEST",
)
for table, key in ((f"{name}-dedupe", "id"), (f"{name}-buffer", "messageId")):
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
out["sessions_table"] = f"{name}-sessions"
out["dedupe_table"] = f"{name}-dedupe"
out["buffer_table"] = f"{name}-buffer"
print(json.dumps(out))

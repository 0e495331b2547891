"""The reference sample's handling of an inbound customer text, as one boto3 loop.

The sample (AWS's Python Lambdas, reference.md section 6) cannot be vendored here (no
network, and its code is not in this repository), so this reproduces its call sequence
for a text with the same AWS clients (boto3) the Lambdas use:

  1. PutItem of the raw message into the buffer table (the sample's DynamoDB buffer,
     whose stream feeds the aggregator; the 20 s tumbling window itself is not waited for:
     that would only add latency, not CPU);
  2. SendWhatsAppMessage: mark as read;  3. SendWhatsAppMessage: react 👀;
  4. Query the session table (GSI customerId-index) for the customer's chat;
  5. SendMessage to that chat (connectparticipant), or, for a customer with no chat,
     StartChatContact + StartContactStreaming + CreateParticipantConnection + PutItem of
     the session;
  6. SendWhatsAppMessage: react ✅.

The SQS receive and delete that Lambda's event source mapping does for the function are
done here too, as they are in waconnect's own count. Status events are read and
dropped, as the sample's handler does. One message at a time, sequential calls, as in a
Lambda invocation. On SIGTERM it writes its call counts (JSON) to $SAMPLE_CALLS_OUT.

Environment: AWS_ENDPOINT_URL (moto), AWS_ENDPOINT_URL_CONNECT / _CONNECTPARTICIPANT /
_SOCIALMESSAGING (the simulator), SAMPLE_QUEUE_URL, SAMPLE_SESSIONS_TABLE,
SAMPLE_BUFFER_TABLE, SAMPLE_INSTANCE_ID, SAMPLE_FLOW_ID, SAMPLE_STREAMING_TOPIC_ARN.
"""

import collections
import json
import os
import signal
import sys
import time
import uuid

import boto3

env = os.environ
session = boto3.session.Session()
sqs = session.client("sqs")
ddb = session.client("dynamodb")
connect = session.client("connect", endpoint_url=env["AWS_ENDPOINT_URL_CONNECT"])
participant = session.client(
    "connectparticipant", endpoint_url=env["AWS_ENDPOINT_URL_CONNECTPARTICIPANT"]
)
social = session.client("socialmessaging", endpoint_url=env["AWS_ENDPOINT_URL_SOCIALMESSAGING"])

calls = collections.Counter()
running = True


def stop(*_):
    global running
    running = False
    with open(env.get("SAMPLE_CALLS_OUT", "/dev/null"), "w") as f:
        json.dump(calls, f)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)


def call(name, fn, **kwargs):
    calls[name] += 1
    return fn(**kwargs)


def whatsapp(phone_id, message):
    call(
        "SendWhatsAppMessage",
        social.send_whatsapp_message,
        originationPhoneNumberId=phone_id,
        message=json.dumps(message).encode(),
        metaApiVersion="v20.0",
    )


def find_session(customer):
    items = call(
        "Query",
        ddb.query,
        TableName=env["SAMPLE_SESSIONS_TABLE"],
        IndexName="customerId-index",
        KeyConditionExpression="customerId = :c AND channel = :ch",
        ExpressionAttributeValues={":c": {"S": customer}, ":ch": {"S": "Whatsapp"}},
    )["Items"]
    return items[0] if items else None


def start_chat(customer, name, phone_id, text):
    started = call(
        "StartChatContact",
        connect.start_chat_contact,
        InstanceId=env["SAMPLE_INSTANCE_ID"],
        ContactFlowId=env["SAMPLE_FLOW_ID"],
        Attributes={"Channel": "Whatsapp", "customerId": customer, "customerName": name,
                    "systemNumber": phone_id},
        ParticipantDetails={"DisplayName": name},
        InitialMessage={"ContentType": "text/plain", "Content": text},
        ChatDurationInMinutes=1440,
        ClientToken=str(uuid.uuid4()),
    )
    call(
        "StartContactStreaming",
        connect.start_contact_streaming,
        InstanceId=env["SAMPLE_INSTANCE_ID"],
        ContactId=started["ContactId"],
        ChatStreamingConfiguration={"StreamingEndpointArn": env["SAMPLE_STREAMING_TOPIC_ARN"]},
        ClientToken=str(uuid.uuid4()),
    )
    connection = call(
        "CreateParticipantConnection",
        participant.create_participant_connection,
        ParticipantToken=started["ParticipantToken"],
        Type=["CONNECTION_CREDENTIALS"],
        ConnectParticipant=True,
    )
    call(
        "PutItem",
        ddb.put_item,
        TableName=env["SAMPLE_SESSIONS_TABLE"],
        Item={
            "contactId": {"S": started["ContactId"]},
            "customerId": {"S": customer},
            "channel": {"S": "Whatsapp"},
            "participantToken": {"S": started["ParticipantToken"]},
            "connectionToken": {"S": connection["ConnectionCredentials"]["ConnectionToken"]},
            "systemNumber": {"S": phone_id},
            "name": {"S": name},
            "date": {"N": str(int(time.time()) + 86400)},
        },
    )


def handle_text(phone_id, customer, name, message):
    text = message["text"]["body"]
    call("PutItem", ddb.put_item, TableName=env["SAMPLE_BUFFER_TABLE"],
         Item={"messageId": {"S": message["id"]}, "body": {"S": json.dumps(message)}})
    whatsapp(phone_id, {"messaging_product": "whatsapp", "status": "read",
                        "message_id": message["id"]})
    whatsapp(phone_id, {"messaging_product": "whatsapp", "to": customer, "type": "reaction",
                        "reaction": {"message_id": message["id"], "emoji": "👀"}})
    chat = find_session(customer)
    if chat:
        call(
            "SendMessage",
            participant.send_message,
            ConnectionToken=chat["connectionToken"]["S"],
            ContentType="text/plain",
            Content=text,
            ClientToken=str(uuid.uuid4()),
        )
    else:
        start_chat(customer, name, phone_id, text)
    whatsapp(phone_id, {"messaging_product": "whatsapp", "to": customer, "type": "reaction",
                        "reaction": {"message_id": message["id"], "emoji": "✅"}})


def handle(body):
    envelope = json.loads(body)
    event = json.loads(envelope["Message"]) if "Message" in envelope else envelope
    phone_id = event["context"]["MetaPhoneNumberIds"][0]["arn"].split("phone-number-id/")[-1]
    phone_id = "phone-number-id-" + phone_id
    entry = json.loads(event["whatsAppWebhookEntry"])
    for change in entry.get("changes", []):
        value = change.get("value", {})
        names = {c["wa_id"]: c.get("profile", {}).get("name", "") for c in value.get("contacts", [])}
        for message in value.get("messages", []):
            if message.get("type") == "text":
                customer = message["from"]
                handle_text(phone_id, customer, names.get(customer, ""), message)


while running:
    received = call("ReceiveMessage", sqs.receive_message, QueueUrl=env["SAMPLE_QUEUE_URL"],
                    MaxNumberOfMessages=10, WaitTimeSeconds=20)
    for m in received.get("Messages", []):
        handle(m["Body"])
        call("DeleteMessage", sqs.delete_message, QueueUrl=env["SAMPLE_QUEUE_URL"],
             ReceiptHandle=m["ReceiptHandle"])

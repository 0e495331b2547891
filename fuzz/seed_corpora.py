#!/usr/bin/env python3
"""Writes the cargo-fuzz seed corpora (fuzz/corpus/<target>/) from tests/fixtures.

Every free text of the fixtures gets the marker SECRETxCUSTOMERxDATA planted in it, as the
bounded harness does (tests/fuzz_decoders.rs): the oracles fail when a reason quotes it.
Run from anywhere; rerunning rewrites the seeds and leaves what the fuzzer added alone.
"""
import hashlib
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "tests" / "fixtures"
SECRET = "SECRETxCUSTOMERxDATA"
FREE_TEXT = {"body", "caption", "name", "address", "filename", "Content", "DisplayName",
             "AttachmentName"}
EMBEDDED = {"Message", "whatsAppWebhookEntry"}


def plant(v):
    if isinstance(v, dict):
        for k, child in v.items():
            if isinstance(child, str) and k in FREE_TEXT:
                v[k] = f"{SECRET} {child}"
            elif isinstance(child, str) and k in EMBEDDED:
                try:
                    inner = json.loads(child)
                except ValueError:
                    continue
                plant(inner)
                v[k] = json.dumps(inner, ensure_ascii=False)
            else:
                plant(child)
    elif isinstance(v, list):
        for child in v:
            plant(child)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def pe():
    b = bytearray(0x80)
    b[0:2] = b"MZ"
    b[0x3C] = 0x40
    b[0x40:0x44] = b"PE\0\0"
    return bytes(b)


def main():
    batch_messages = []
    for path in sorted(FIXTURES.glob("*.json")):
        envelope = json.loads(path.read_text())
        plant(envelope)
        body = json.dumps(envelope, ensure_ascii=False)
        write("sns_envelope", body)
        message = envelope["Message"]
        inner = json.loads(message)
        if "whatsAppWebhookEntry" in inner:
            write("eum_event", message)
            write("meta_webhook", inner["whatsAppWebhookEntry"])
            write("regroup_split", body)
            write("regroup_split", message)  # raw delivery
            entry = json.loads(inner["whatsAppWebhookEntry"])
            batch_messages += entry["changes"][0]["value"].get("messages", [])
            batch_event = inner
        else:
            write("connect_item", message)
            if "Attachments" in inner:
                write("agent_attachments", json.dumps(inner["Attachments"], ensure_ascii=False))
    # A batch of several customers' messages, for the splitter.
    entry = json.loads(batch_event["whatsAppWebhookEntry"])
    for i, m in enumerate(batch_messages):
        m["from"] = f"54911000000{i % 3}"
        m["id"] = f"wamid.batch{i}"
        m["timestamp"] = str(1763647391 + (7 - i) % 4)
    entry["changes"][0]["value"]["messages"] = batch_messages
    batch_event = dict(batch_event, whatsAppWebhookEntry=json.dumps(entry, ensure_ascii=False))
    write("regroup_split", json.dumps(batch_event, ensure_ascii=False))
    write("agent_attachments", "[]")
    write("agent_attachments", json.dumps([
        {"AttachmentId": "a1", "AttachmentName": f"{SECRET}.wav", "ContentType": "audio/wav",
         "Status": "APPROVED"},
        {"AttachmentId": "a2", "AttachmentName": "x.png", "ContentType": "image/png",
         "Status": "IN_PROGRESS"}]))
    for mime, data in [
        ("application/pdf", pe()),
        ("image/jpeg", b"\x7fELF\x02\x01\x01" + bytes(57)),
        ("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0"),
        ("application/pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"),
        ("audio/ogg; codecs=opus", b"OggS\0\x02" + bytes(20) + b"\x01\x13OpusHead"),
        ("audio/mpeg", b"ID3\x04\0\0\0\0\0\x00" + bytes(16)),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0[Content_Types].xml"),
        ("text/plain", b"MZ is a prefix, not a program " + SECRET.encode()),
        ("text/csv", b"name,amount\nana,12\n"),
    ]:
        write("content_check", mime.encode() + b"\n" + data)
    print(f"seeds written under {FUZZ / 'corpus'}")


if __name__ == "__main__":
    main()

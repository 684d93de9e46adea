#!/usr/bin/env python3
"""A minimal Bulk Data server whose one Group has MEMBERS members with UUID ids (as real servers name patients),
for measuring what a large Group read costs the client (Scripts/bench.sh, "big Group" row). Not a test bed: it
answers the capability check, one kick-off, the status URL, one small Patient file, the Group read and the DELETE.

    python3 Scripts/big-group-server.py PORT MEMBERS     (listens on 127.0.0.1, stops after 15 minutes)
"""
import http.server, json, sys, threading, uuid, random

port, members = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(1)
ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(members)]
base = f"http://127.0.0.1:{port}"
group = ('{"resourceType":"Group","id":"big","type":"person","actual":true,"quantity":%d,"member":[' % members
         + ",".join('{"entity":{"reference":"Patient/%s"}}' % i for i in ids) + "]}").encode()
patients = "".join(json.dumps({"resourceType": "Patient", "id": i, "meta": {"lastUpdated": "2026-01-05T09:00:00Z"}}) + "\n"
                   for i in ids[:1000]).encode()
capability = json.dumps({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
    "fhirVersion": "4.0.1", "format": ["json"], "date": "2026-01-05T09:00:00Z",
    "software": {"name": "big-group-server"},
    "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
    "rest": [{"mode": "server", "resource": [{"type": "Patient"}, {"type": "Group", "operation": [{"name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]}]}]}).encode()
manifest = json.dumps({"transactionTime": "2026-01-05T09:00:00Z", "request": base + "/Group/big/$export",
    "requiresAccessToken": False, "output": [{"type": "Patient", "url": base + "/files/Patient.ndjson", "count": 1000}],
    "error": []}).encode()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def send(self, status, body=b"", kind="application/fhir+json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/metadata": self.send(200, capability)
        elif path == "/Group/big/$export": self.send(202, b"", headers=[("Content-Location", base + "/status/1")])
        elif path == "/status/1": self.send(200, manifest, "application/json")
        elif path == "/files/Patient.ndjson": self.send(200, patients, "application/fhir+ndjson")
        elif path == "/Group/big": self.send(200, group)
        else: self.send(404, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}')
    def do_DELETE(self): self.send(202)

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
threading.Timer(900, server.shutdown).start()
server.serve_forever()

"""An OTLP/HTTP receiver for tests: accepts `POST /v1/traces` (protobuf), decodes each
ExportTraceServiceRequest with opentelemetry-proto, and appends every span to a file as one
JSON object per line:

    {"service": ..., "name": ..., "kind": ..., "trace_id": hex, "span_id": hex,
     "parent_span_id": hex or "", "attributes": {...}, "status": code, "events": [names]}

Usage: receiver.py OUT_FILE. Prints "listening on PORT" once it accepts (port 0: any free one),
and runs until killed. Anything else than a well-formed protobuf export is answered 400 and
recorded as {"error": ...}, so a test sees it.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    v = getattr(any_value, kind)
    if kind == "array_value":
        return [value(x) for x in v.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.values}
    if kind == "bytes_value":
        return v.hex()
    return v


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        out = self.server.out
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"unexpected path {self.path}")
            ctype = self.headers.get("content-type", "")
            if ctype != "application/x-protobuf":
                raise ValueError(f"unexpected content type {ctype!r}")
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            lines = []
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        lines.append(
                            {
                                "service": resource.get("service.name"),
                                "scope": ss.scope.name,
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "attributes": attributes(span.attributes),
                                "status": span.status.code,
                                "events": [e.name for e in span.events],
                            }
                        )
            status = 200
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        except Exception as e:  # noqa: BLE001 - the test reads what went wrong
            lines = [{"error": str(e)}]
            status = 400
            reply = b""
        with self.server.lock:
            with open(out, "a", encoding="utf-8") as f:
                for line in lines:
                    f.write(json.dumps(line) + "\n")
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def main():
    import threading

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.out = sys.argv[1]
    server.lock = threading.Lock()
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""The hostile mode of lakefs_server (/_test/hostile): answers a well-behaved lakeFS never gives, for
tests that a client survives a hostile or broken server. Each rule names an operationId (optionally
query parameters that must match, and a count; without one it applies until cleared) and what to do
to the real answer, which is then sent unvalidated:

  status, headers, body, content_type  replace the answer (body: latin-1 text, so any bytes can be sent)
  pad_bytes N                          append N spaces to a JSON body (still valid JSON, oversized)
  inject_results [obj...]              add results to a list answer; "path" is latin-1 text holding
                                       raw bytes (non-UTF-8 names go out as raw bytes, as no JSON
                                       encoder would send them); missing fields get defaults
  next_offset S                        has_more true and next_offset S on every page (endless paging)
  set {k: v}, results_set {k: v}       set top-level keys / keys of every result (e.g. a presigned URL)
  ignore_range true                    answer a ranged GET with the whole object, 200
  range_from_zero true                 answer a ranged GET "bytes=A-B" with bytes 0-(B-A), 206 with
                                       the Content-Range of what was sent: the right length, the
                                       wrong bytes
  content_range S                      a wrong Content-Range header on a ranged answer
  truncate_to N                        declare the whole length but close after N bytes

Never applies to /_test/ itself; rules are in memory, under one lock.
"""
import json

from control import RuleTable
from protocol import Response

REPLACE_KEYS = ("status", "headers", "body", "content_type")
KNOWN_KEYS = {"operation", "match", "count", "pad_bytes", "inject_results", "next_offset", "set", "results_set",
              "ignore_range", "range_from_zero", "content_range", "truncate_to"} | set(REPLACE_KEYS)
DEFAULT_RESULT = {"path_type": "object", "physical_address": "local://hostile/x", "checksum": "hostile",
                  "mtime": 1600000000, "size_bytes": 8, "content_type": "application/octet-stream",
                  "metadata": {}}


class Hostile(RuleTable):
    def add(self, spec):
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise ValueError("unknown hostile keys %s" % sorted(unknown))
        if not spec.get("operation"):
            raise ValueError("a hostile rule needs an operation")
        return self.append(spec)


def replaces(rule):
    return any(k in rule for k in REPLACE_KEYS)


def replacement(rule):
    body = (rule.get("body") or "").encode("latin-1")
    return Response(int(rule.get("status", 200)), body, rule.get("content_type", "application/json"),
                    rule.get("headers"))


def _raw(text):
    """latin-1 text holding raw bytes -> a str that json.dumps(ensure_ascii=False) keeps and
    encode('utf-8', 'surrogateescape') turns back into those bytes."""
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


def transform(rule, resp):
    """The real answer resp changed as rule says (resp.file answers only get their headers changed)."""
    if rule.get("content_range"):
        resp.headers["Content-Range"] = rule["content_range"]
    json_keys = ("pad_bytes", "inject_results", "next_offset", "set", "results_set")
    if resp.file or not any(k in rule for k in json_keys):
        return resp
    doc = json.loads(resp.body)
    for k, v in (rule.get("set") or {}).items():
        doc[k] = v
    if isinstance(doc.get("results"), list) and (rule.get("inject_results") or rule.get("results_set")):
        for extra in rule.get("inject_results") or []:
            item = dict(DEFAULT_RESULT, **extra)
            item["path"] = _raw(item["path"])
            doc["results"].append(item)
        for item in doc["results"]:
            item.update(rule.get("results_set") or {})
        doc["results"].sort(key=lambda r: str(r.get("path", r.get("id", ""))).encode("utf-8", "surrogateescape"))
    if rule.get("next_offset") is not None:
        doc["pagination"] = dict(doc.get("pagination") or {}, has_more=True, next_offset=rule["next_offset"])
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogateescape")
    body += b" " * int(rule.get("pad_bytes") or 0)
    return Response(resp.status, body, resp.content_type, resp.headers)


def rewrite_request(rule, headers):
    """Applies the rule's request-side changes to the request headers (an email.message.Message)."""
    if rule.get("ignore_range"):
        del headers["Range"]
    rng = headers.get("Range") or ""
    if rule.get("range_from_zero") and rng.startswith("bytes=") and "-" in rng:
        first, _, last = rng[len("bytes="):].partition("-")
        if first.isdigit() and last.isdigit():
            del headers["Range"]
            headers["Range"] = "bytes=0-%d" % (int(last) - int(first))

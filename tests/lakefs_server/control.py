"""Test control of lakefs_server (/_test/, no auth): request counts by operationId, injected
faults (status with an optional raw body / latency / cut connection / a distorted data range / a
pagination that does not advance; by count or seeded ratio), recorded spec violations and, where the
server has one, the hostile mode (hostile.py).
All state is in memory and guarded by one lock. Never let a /_test/ request count as API traffic.
"""
import itertools
import json
import random
import threading

from protocol import Response, error_response, json_response


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts, self.total, self.violations = {}, 0, []
        self.connections = 0  # TCP connections the API host accepted: shows client keep-alive
        self.data_connections = 0  # the same for the presigned-URL host (the "object store")
        # Requests being handled now, and the most at once, per operation: shows client parallelism.
        self.in_flight, self.max_in_flight = {}, {}

    def connection(self, data_host=False):
        with self.lock:
            if data_host:
                self.data_connections += 1
            else:
                self.connections += 1

    def count(self, operation):
        with self.lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
            self.total += 1

    def enter(self, operation):
        with self.lock:
            now = self.in_flight.get(operation, 0) + 1
            self.in_flight[operation] = now
            self.max_in_flight[operation] = max(now, self.max_in_flight.get(operation, 0))

    def leave(self, operation):
        with self.lock:
            self.in_flight[operation] = self.in_flight.get(operation, 1) - 1

    def reset_counts(self):
        with self.lock:
            self.counts, self.total, self.connections, self.data_connections = {}, 0, 0, 0
            self.max_in_flight = dict(self.in_flight)

    def violation(self, operation, method, path, status, problems):
        with self.lock:
            self.violations.append({"operation": operation, "method": method, "path": path, "status": status,
                                    "problems": list(problems)})


# What a "range" fault does to a data answer (getObject, presignedGet) that carries object bytes:
RANGE_FAULTS = {
    "ignore",  # 200 with the whole object, as a server that ignores Range
    "shift",  # the bytes one past those asked for, with a Content-Range that says so
    "short",  # a Content-Range naming the bytes asked for, a body one byte shorter
    "long",  # a Content-Range naming the bytes asked for, a body one byte longer
    "no_content_range",  # 206 without a Content-Range
}
# What a "pagination" fault does to a paged answer (listObjects, listBranches, listRepositories,
# listTags, diffBranch, diffRefs, logCommits): "stuck" answers every request with the first page
# and has_more, its last item as next_offset (a server that never advances: a client without a
# guard asks forever), "empty" answers has_more with no results and an offset that does advance.
PAGINATION_FAULTS = {"stuck", "empty"}
# What a fault does (at least one): answer `status` instead of handling; wait `latency_ms` first;
# handle, then cut the answer after `cut_after_bytes` body bytes; handle, then close the connection
# without a byte of answer (`drop_response`: applied, answer lost); replace every presigned URL of
# the answer (JSON presigned_url/presigned_urls, an http(s) physical_address, Location) with
# `rewrite_url`; send the answer's body a byte every `trickle_ms`; pad a JSON answer to at least
# `pad_bytes` (an extra "padding" member: a too-large but well-formed answer).
# `range` and `pagination` distort a data or paged answer (RANGE_FAULTS, PAGINATION_FAULTS above).
# `hold` (a gate name) keeps the request waiting, before any other kind applies, until the gate is
# opened (POST /_test/gates/NAME) or the faults are cleared: a test decides when the server gets it.
# `match` (query parameter -> value, e.g. {"prefix": "p/"}) narrows a rule to the requests whose
# query has those values.
KINDS = ("status", "latency_ms", "cut_after_bytes", "drop_response", "rewrite_url", "trickle_ms", "pad_bytes",
         "range", "pagination", "hold")
HOLD_LIMIT_S = 120  # a held request goes on by itself after this long: a failed test never hangs the server


class RuleTable:
    """Ordered rules under one lock (the faults here, hostile.py's rules): the first rule for an
    operation (a rule's None: any) whose "match" holds for the request's query and that is still armed
    applies. Armed: by a seeded "ratio" when it has one, else "count" more times (None: until cleared)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.ids = itertools.count(1)

    def append(self, rule):
        """Adds a checked rule; returns its id."""
        rule = dict(rule, id=next(self.ids), applied=0)
        with self.lock:
            self.rules.append(rule)
        return rule["id"]

    @staticmethod
    def _armed(rule):
        if rule.get("ratio") is not None:
            return rule["_rng"].random() < float(rule["ratio"])
        if rule.get("count") is None:
            return True
        if rule["count"] <= 0:
            return False
        rule["count"] -= 1
        return True

    def pick(self, operation, query=None):
        """A copy of the rule that applies to operation with query (a parse_qs dict), or None."""
        query = query or {}
        with self.lock:
            for rule in self.rules:
                if rule["operation"] not in (None, operation):
                    continue
                match = rule.get("match") or {}
                if any((query.get(k) or [None])[0] != v for k, v in match.items()):
                    continue
                if not self._armed(rule):
                    continue
                rule["applied"] += 1
                return dict(rule)
        return None

    def list(self):
        with self.lock:
            return [{k: v for k, v in rule.items() if not k.startswith("_")} for rule in self.rules]

    def clear(self):
        with self.lock:
            self.rules = []


class Faults(RuleTable):
    """Injected faults; count 1 unless a count or ratio is given."""

    def __init__(self):
        super().__init__()
        self.gates = {}  # hold name -> threading.Event (set: open)

    def _gate(self, name):
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def hold(self, name):
        """Waits (in a request's thread) until gate name is opened."""
        self._gate(name).wait(HOLD_LIMIT_S)

    def open_gate(self, name):
        self._gate(name).set()

    def clear(self):
        super().clear()
        with self.lock:
            gates, self.gates = self.gates, {}
        for gate in gates.values():
            gate.set()

    def add(self, spec):
        rule = {"operation": spec.get("operation"), "status": spec.get("status"),
                "message": spec.get("message"), "latency_ms": spec.get("latency_ms"),
                "cut_after_bytes": spec.get("cut_after_bytes"), "count": spec.get("count"),
                "body": spec.get("body"), "range": spec.get("range"), "pagination": spec.get("pagination"),
                "drop_response": bool(spec.get("drop_response")), "rewrite_url": spec.get("rewrite_url"),
                "trickle_ms": spec.get("trickle_ms"), "pad_bytes": spec.get("pad_bytes"),
                "ratio": spec.get("ratio"), "seed": spec.get("seed", 0), "hold": spec.get("hold"),
                "match": spec.get("match")}
        if rule["count"] is None and rule["ratio"] is None:
            rule["count"] = 1
        if all(rule[k] is None or rule[k] is False for k in KINDS):
            raise ValueError("a fault needs one of " + ", ".join(KINDS))
        if rule["match"] is not None and not (isinstance(rule["match"], dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in rule["match"].items())):
            raise ValueError("match must map query parameters to strings")
        if rule["hold"] is not None and not isinstance(rule["hold"], str):
            raise ValueError("hold must be a gate name (a string)")
        if rule["rewrite_url"] is not None and not isinstance(rule["rewrite_url"], str):
            raise ValueError("rewrite_url must be a string")
        if rule["range"] is not None and rule["range"] not in RANGE_FAULTS:
            raise ValueError("range must be one of %s" % ", ".join(sorted(RANGE_FAULTS)))
        if rule["pagination"] is not None and rule["pagination"] not in PAGINATION_FAULTS:
            raise ValueError("pagination must be one of %s" % ", ".join(sorted(PAGINATION_FAULTS)))
        if rule["body"] is not None and (rule["status"] is None or not isinstance(rule["body"], str)):
            raise ValueError("body (a string) goes with a status")
        if rule["ratio"] is not None and not 0.0 <= float(rule["ratio"]) <= 1.0:
            raise ValueError("ratio must be between 0 and 1")
        rule["_rng"] = random.Random(rule["seed"])
        return self.append(rule)


class Control:
    def __init__(self, faults, recorder, hostile=None):
        self.faults, self.recorder, self.hostile = faults, recorder, hostile

    def handle(self, method, path, body):
        name = path[len("/_test/"):].strip("/")
        rec = self.recorder
        if name == "counts":
            if method == "GET":
                with rec.lock:
                    return json_response(200, {"counts": dict(rec.counts), "total": rec.total,
                                                "connections": rec.connections,
                                                "data_connections": rec.data_connections,
                                                "max_in_flight": dict(rec.max_in_flight)})
            if method == "DELETE":
                rec.reset_counts()
                return Response(204)
        elif name == "violations":
            if method == "GET":
                with rec.lock:
                    return json_response(200, {"violations": list(rec.violations)})
            if method == "DELETE":
                with rec.lock:
                    rec.violations = []
                return Response(204)
        elif name.startswith("gates/") and method == "POST":
            self.faults.open_gate(name[len("gates/"):])
            return Response(204)
        elif name == "faults":
            return self.rule_table(self.faults, "faults", "fault", method, body, 1 << 20)
        elif name == "hostile":
            if self.hostile is None:
                return error_response(501, "this server has no hostile mode")
            return self.rule_table(self.hostile, "hostile", "hostile rule", method, body, 1 << 24)
        else:
            return error_response(404, "unknown test control endpoint %s" % path)
        return error_response(405, "method not allowed")

    @staticmethod
    def rule_table(table, key, what, method, body, max_body):
        """GET lists a RuleTable's rules, DELETE clears them, POST adds one (a JSON object)."""
        if method == "GET":
            return json_response(200, {key: table.list()})
        if method == "DELETE":
            table.clear()
            return Response(204)
        if method == "POST":
            try:
                spec = json.loads(body.read_all(max_body) or b"{}")
                if not isinstance(spec, dict):
                    raise ValueError("body must be a JSON object")
                return json_response(201, {"id": table.add(spec)})
            except (ValueError, TypeError) as err:
                return error_response(400, "bad %s: %s" % (what, err))
        return error_response(405, "method not allowed")

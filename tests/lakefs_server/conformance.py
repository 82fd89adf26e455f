# Conformance checker for the lakeFS test server: validates every request it receives and every response it sends
# against the upstream lakeFS OpenAPI 3.0 spec (swagger.yml), so the FUSE client is only ever tested against
# traffic real lakeFS could produce. It must never let invalid traffic pass silently: a spec construct it does not
# understand raises SpecError instead of being skipped, and the only departures from the spec it tolerates are the
# documented real-server behaviours below (REAL_SERVER_EXTRA_RESPONSES, auth 401s, raw bodies in any Content-Type).
from __future__ import annotations

import datetime
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field

import jsonschema
import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords of an OpenAPI 3.0 Schema Object that constrain values and that we carry over to JSON Schema (draft 4,
# whose boolean exclusiveMinimum/exclusiveMaximum match OpenAPI 3.0).
_COPIED_KEYWORDS = frozenset({
    "type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "required", "format",
})
# Keywords holding sub-schemas, converted recursively.
_NESTED_KEYWORDS = frozenset({"properties", "items", "additionalProperties", "allOf", "oneOf", "anyOf", "not"})
# Pure annotations: they never reject a value. readOnly/writeOnly are dropped on purpose (the spec uses neither).
_ANNOTATION_KEYWORDS = frozenset({
    "title", "description", "default", "example", "deprecated", "readOnly", "writeOnly",
    "xml", "externalDocs", "discriminator",
})

# Statuses that HTTP itself forbids a body for, whatever the spec says.
_BODYLESS_STATUSES = frozenset({204, 205, 304})
_MAX_REPORTED_SCHEMA_ERRORS = 20

# Real lakeFS (v1.84) answers some operations in ways its own spec does not declare. The FUSE client has to cope
# with them, so the test server may reproduce them; every tolerated departure is listed here and nothing else is.
_NO_BODY_RESPONSE = {"description": "no body"}
_ERROR_JSON_RESPONSE = {
    "description": "lakeFS error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
REAL_SERVER_EXTRA_RESPONSES = {
    # Spec says 201; the lakeFS handler answers 204 No Content.
    ("updateObjectUserMetadata", "204"): _NO_BODY_RESPONSE,
}
# lakeFS's authentication middleware answers 401 with an Error body before any handler runs, so every operation that
# requires credentials can return it, including those whose spec forgets it (getCurrentUser, the one a client calls
# at mount time to check its credentials).
_AUTH_FAILURE_STATUS = "401"


class SpecError(Exception):
    """The spec uses a construct this checker cannot check; raised rather than silently skipping a constraint."""


@dataclass
class Route:
    operation_id: str
    path_params: dict = field(default_factory=dict)  # name -> percent-decoded value
    template: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Media types and strict JSON


def parse_media_type(value: str) -> tuple[str, dict]:
    """'Application/JSON; charset=UTF-8' -> ('application/json', {'charset': 'UTF-8'})."""
    essence, _, rest = value.partition(";")
    params = {}
    for item in rest.split(";"):
        name, sep, param_value = item.partition("=")
        if sep:
            params[name.strip().lower()] = param_value.strip().strip('"')
    return essence.strip().lower(), params


def _is_json_media(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _media_matches(declared: str, actual: str) -> bool:
    declared_type, _, declared_sub = declared.lower().partition("/")
    actual_type, _, actual_sub = actual.partition("/")
    return declared_type in ("*", actual_type) and declared_sub in ("*", actual_sub)


def _charset_violation(where: str, params: dict) -> list[str]:
    # JSON and the text bodies lakeFS sends are UTF-8; any other declared charset would make a client misread them.
    charset = params.get("charset")
    if charset is None or charset.lower() in ("utf-8", "utf8"):
        return []
    return [f"{where}: charset {charset!r} is not UTF-8"]


class _InvalidJSON(ValueError):
    pass


def _reject_constant(name):
    raise _InvalidJSON(f"{name} is not valid JSON")


def _reject_duplicate_keys(pairs):
    # Python's json keeps the last duplicate silently; other parsers keep the first, so duplicates are ambiguous.
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _InvalidJSON(f"duplicate object keys {duplicates}")
    return dict(pairs)


def parse_strict_json(body: bytes):
    """Parse RFC 8259 JSON (UTF-8, no NaN/Infinity, no duplicate keys); raises ValueError with a reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _InvalidJSON(f"not UTF-8: {error}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise _InvalidJSON(str(error)) from None


# ---------------------------------------------------------------------------------------------------------------
# Formats: only the ones whose meaning is certain are checked; unknown formats (binary, email, ...) are annotations.

_FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
_RFC3339_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII)


@_FORMAT_CHECKER.checks("date-time")
def _is_rfc3339_date_time(instance) -> bool:
    if not isinstance(instance, str):
        return True
    parts = _RFC3339_DATE_TIME.match(instance)
    if parts is None:
        return False
    date, time, _fraction, offset = parts.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:  # the regex checks the shape, this checks the ranges (month 13, 25:00, ...)
        datetime.datetime.fromisoformat(f"{date}T{time}{offset}")
    except ValueError:
        return False
    return True


def _integer_range_checker(bits: int):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lambda instance: not isinstance(instance, int) or isinstance(instance, bool) or low <= instance <= high


_FORMAT_CHECKER.checks("int32")(_integer_range_checker(32))
_FORMAT_CHECKER.checks("int64")(_integer_range_checker(64))


# ---------------------------------------------------------------------------------------------------------------
# OpenAPI 3.0 schema -> JSON Schema draft 4


def _definition_ref(name: str) -> str:
    return "#/definitions/" + name.replace("~", "~0").replace("/", "~1")


class _SchemaConverter:
    """Turns OpenAPI 3.0 Schema Objects into draft-4 JSON Schema; component schemas become shared definitions."""

    COMPONENT_SCHEMA_PREFIX = "#/components/schemas/"

    def __init__(self, component_schemas: dict):
        self.definitions = {name: self.convert(schema, f"components/schemas/{name}")
                            for name, schema in component_schemas.items()}
        self._definitions_checked = False

    def convert(self, node, where: str) -> dict:
        if not isinstance(node, dict):
            raise SpecError(f"{where}: schema is not an object: {node!r}")
        if "$ref" in node:
            return self._convert_ref(node, where)
        converted = {}
        for keyword, value in node.items():
            if keyword in _COPIED_KEYWORDS:
                converted[keyword] = value
            elif keyword in _NESTED_KEYWORDS:
                converted[keyword] = self._convert_nested(keyword, value, f"{where}/{keyword}")
            elif keyword not in _ANNOTATION_KEYWORDS and keyword != "nullable" and not keyword.startswith("x-"):
                raise SpecError(f"{where}: unsupported schema keyword {keyword!r}")
        if node.get("nullable") is True:
            # anyOf rather than widening "type" so enums and type-less schemas also accept null.
            converted = {"anyOf": [converted, {"type": "null"}]}
        return converted

    def _convert_ref(self, node: dict, where: str) -> dict:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith(self.COMPONENT_SCHEMA_PREFIX):
            raise SpecError(f"{where}: unsupported schema $ref {ref!r}")
        # OpenAPI 3.0 ignores $ref siblings; refuse any that would look like a constraint to a reader.
        ignored_constraints = sorted(key for key in node
                                     if key != "$ref" and key not in _ANNOTATION_KEYWORDS and not key.startswith("x-"))
        if ignored_constraints:
            raise SpecError(f"{where}: constraints {ignored_constraints} next to $ref would be ignored")
        return {"$ref": _definition_ref(ref[len(self.COMPONENT_SCHEMA_PREFIX):])}

    def _convert_nested(self, keyword: str, value, where: str):
        if keyword == "properties":
            if not isinstance(value, dict):
                raise SpecError(f"{where}: properties must be a map")
            return {name: self.convert(schema, f"{where}/{name}") for name, schema in value.items()}
        if keyword in ("allOf", "oneOf", "anyOf"):
            if not isinstance(value, list):
                raise SpecError(f"{where}: must be a list")
            return [self.convert(schema, f"{where}/{index}") for index, schema in enumerate(value)]
        if keyword == "additionalProperties" and isinstance(value, bool):
            return value
        return self.convert(value, where)

    def validator(self, schema: dict, where: str) -> jsonschema.Draft4Validator:
        """A validator for an already converted schema, able to follow refs into the shared definitions."""
        if not self._definitions_checked:
            self._check_schema({"definitions": self.definitions}, "components/schemas")
            self._definitions_checked = True
        self._check_schema(schema, where)
        root = {"definitions": self.definitions, "allOf": [schema]}
        return jsonschema.Draft4Validator(root, format_checker=_FORMAT_CHECKER)

    @staticmethod
    def _check_schema(schema: dict, where: str) -> None:
        try:
            jsonschema.Draft4Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise SpecError(f"{where}: converted schema is invalid: {error.message}") from None


def _format_instance_path(path) -> str:
    """'$.results[0].mtime: ' for a nested value; nothing for the whole value (a parameter, a text body)."""
    if not path:
        return ""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path) + ": "


def _schema_violations(validator: jsonschema.Draft4Validator, instance, where: str) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(map(str, error.absolute_path)))
    violations = [f"{where}: {_format_instance_path(error.absolute_path)}{error.message}"
                  for error in errors[:_MAX_REPORTED_SCHEMA_ERRORS]]
    if len(errors) > _MAX_REPORTED_SCHEMA_ERRORS:
        violations.append(f"{where}: ... and {len(errors) - _MAX_REPORTED_SCHEMA_ERRORS} more schema errors")
    return violations


# ---------------------------------------------------------------------------------------------------------------
# Parameters: text on the wire -> typed value, then schema validation

_JSON_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z", re.ASCII)
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z", re.ASCII)


# Go's strconv.ParseBool, exactly (anything else, e.g. "yes" or "tRUE", is an error there).
GO_BOOLEANS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
               "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


class _Unparseable(ValueError):
    pass


def _parse_parameter_text(text: str, type_name):
    """Numbers are serialized like JSON scalars. Booleans are what lakeFS's validator (kin-openapi
    parsePrimitive) and its parameter binding (oapi-codegen BindStringToObject) accept: Go's
    strconv.ParseBool, so the generated SDKs' True/False pass."""
    if type_name == "integer":
        if not _JSON_INTEGER.match(text):
            raise _Unparseable(f"{text!r} is not an integer")
        return int(text)
    if type_name == "number":
        if not _JSON_NUMBER.match(text):
            raise _Unparseable(f"{text!r} is not a number")
        return float(text)
    if type_name == "boolean":
        if text not in GO_BOOLEANS:
            raise _Unparseable(f"{text!r} is not a boolean (Go's strconv.ParseBool: {', '.join(GO_BOOLEANS)})")
        return GO_BOOLEANS[text]
    return text  # string, or no type at all


@dataclass
class _Operation:
    operation_id: str
    method: str
    template: str
    parameters: dict  # (location, name) -> resolved Parameter Object; operation-level overrides path-level
    responses: dict  # status key as a string ("200", "4XX", "default") -> resolved Response Object
    request_body: dict | None
    security: list  # effective security requirements; [] or a {} entry means credentials are optional

    @property
    def requires_authentication(self) -> bool:
        return bool(self.security) and {} not in self.security


# ---------------------------------------------------------------------------------------------------------------


class Spec:
    def __init__(self, yaml_path: str):
        with open(yaml_path, "rb") as spec_file:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            self._document = yaml.load(spec_file, Loader=loader)
        self._converter = _SchemaConverter(self._document.get("components", {}).get("schemas", {}))
        self._operations: dict[str, _Operation] = {}
        self._path_templates: list[tuple[tuple, str, dict]] = []  # (segments, template, method -> operation id)
        self._validators: dict[tuple, jsonschema.Draft4Validator | None] = {}
        # The test server may be threaded; jsonschema's ref resolver keeps a scope stack per validator, so checks
        # are serialized rather than trusting that stack to concurrent use.
        self._lock = threading.RLock()
        self._load_paths()

    # -- loading -------------------------------------------------------------------------------------------------

    def _resolve(self, node: dict, where: str) -> dict:
        """Follow local $refs (#/components/parameters/..., responses, requestBodies) to the object they name."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen or not isinstance(ref, str) or not ref.startswith("#/"):
                raise SpecError(f"{where}: unresolvable $ref {ref!r}")
            seen.add(ref)
            node = self._document
            for part in ref[2:].split("/"):
                part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
                if not isinstance(node, dict) or part not in node:
                    raise SpecError(f"{where}: dangling $ref {ref!r}")
                node = node[part]
        return node

    def _load_paths(self) -> None:
        global_security = self._document.get("security")
        for template, path_item in self._document.get("paths", {}).items():
            path_level = self._parameters_by_key(path_item.get("parameters", []), template)
            methods = {}
            for method in HTTP_METHODS:
                definition = path_item.get(method)
                if definition is None:
                    continue
                security = definition.get("security", global_security) or []
                operation = self._build_operation(template, method, definition, path_level, security)
                if operation.operation_id in self._operations:
                    raise SpecError(f"duplicate operationId {operation.operation_id!r}")
                self._operations[operation.operation_id] = operation
                methods[method] = operation.operation_id
            segments = tuple(_template_segment(segment) for segment in template.split("/")[1:])
            self._path_templates.append((segments, template, methods))

    def _parameters_by_key(self, parameters: list, where: str) -> dict:
        by_key = {}
        for parameter in parameters:
            parameter = self._resolve(parameter, where)
            by_key[(parameter["in"], parameter["name"])] = parameter
        return by_key

    def _build_operation(self, template, method, definition, path_level, security) -> _Operation:
        operation_id = definition.get("operationId") or f"{method.upper()} {template}"
        parameters = dict(path_level)
        parameters.update(self._parameters_by_key(definition.get("parameters", []), operation_id))
        responses = {str(status): self._resolve(response, f"{operation_id} {status}")
                     for status, response in definition.get("responses", {}).items()}
        request_body = definition.get("requestBody")
        if request_body is not None:
            request_body = self._resolve(request_body, f"{operation_id} requestBody")
        return _Operation(operation_id, method, template, parameters, responses, request_body, security)

    # -- public interface ----------------------------------------------------------------------------------------

    def operation_ids(self) -> set[str]:
        return set(self._operations)

    def match(self, method: str, raw_path: str) -> Route | None:
        raw_segments = raw_path.split("/")
        if raw_segments[0] != "":
            return None  # not an absolute path
        try:
            # Split first, decode second: "%2F" inside a segment stays part of that segment's value.
            segments = [urllib.parse.unquote(segment, errors="strict") for segment in raw_segments[1:]]
        except UnicodeDecodeError:
            return None  # no lakeFS name can be invalid UTF-8
        candidates = []
        for template_segments, template, methods in self._path_templates:
            path_params = _match_segments(template_segments, segments)
            if path_params is not None:
                specificity = tuple(name is not None for _, name in template_segments)  # False (literal) sorts first
                candidates.append((specificity, template, methods, path_params))
        if not candidates:
            return None
        # OpenAPI: concrete paths win over templated ones; the method is chosen only after the path.
        _, template, methods, path_params = min(candidates, key=lambda candidate: candidate[0])
        operation_id = methods.get(method.lower())
        if operation_id is None:
            return None
        return Route(operation_id=operation_id, path_params=path_params, template=template)

    def check_request(self, route: Route, query: dict[str, list[str]], headers: dict[str, str],
                      body: bytes, content_type: str | None) -> list[str]:
        operation = self._operations.get(route.operation_id)
        if operation is None:
            return [f"unknown operationId {route.operation_id!r}"]
        with self._lock:
            return (self._check_path_parameters(operation, route.path_params)
                    + self._check_query_parameters(operation, query)
                    + self._check_header_parameters(operation, headers)
                    + self._check_request_body(operation, body or b"", content_type))

    def check_response(self, operation_id: str, status: int, content_type: str | None, body: bytes) -> list[str]:
        operation = self._operations.get(operation_id)
        if operation is None:
            return [f"unknown operationId {operation_id!r}"]
        where = f"{operation_id} response {status}"
        status_key, response = self._declared_response(operation, int(status))
        if response is None:
            declared = ", ".join(sorted(operation.responses))
            return [f"{where}: status not declared by the spec (declared: {declared})"]
        if operation.method == "head":
            return []  # HEAD responses carry no body, whatever the status
        body = body or b""
        if int(status) in _BODYLESS_STATUSES or 100 <= int(status) < 200:
            return [f"{where}: HTTP forbids a body with this status, got {len(body)} bytes"] if body else []
        with self._lock:
            return self._check_response_body(operation, status_key, response, content_type, body, where)

    # -- parameters (path matching helpers are module functions at the end) ---------------------------------

    def _check_path_parameters(self, operation: _Operation, path_params: dict) -> list[str]:
        violations = []
        declared = {name for location, name in operation.parameters if location == "path"}
        for name in sorted(set(path_params) - declared):
            violations.append(f"{operation.operation_id}: path parameter {name!r} is not declared")
        for name in sorted(declared):
            if name not in path_params:
                violations.append(f"{operation.operation_id}: path parameter {name!r} is missing")
            else:
                violations += self._check_parameter_values(operation, "path", name, [path_params[name]])
        return violations

    def _check_query_parameters(self, operation: _Operation, query: dict[str, list[str]]) -> list[str]:
        violations = []
        for name in sorted(query):
            if ("query", name) not in operation.parameters:
                violations.append(f"{operation.operation_id}: query parameter {name!r} is not declared")
        for (location, name), parameter in sorted(operation.parameters.items()):
            if location != "query":
                continue
            values = query.get(name) or []
            if values:
                violations += self._check_parameter_values(operation, location, name, list(values))
            elif parameter.get("required"):
                violations.append(f"{operation.operation_id}: required query parameter {name!r} is missing")
        return violations

    def _check_header_parameters(self, operation: _Operation, headers: dict[str, str]) -> list[str]:
        # Only declared headers are checked: Authorization, Content-Type, X-Lakefs-Meta-* etc. are always allowed.
        by_lower_name = {name.lower(): value for name, value in (headers or {}).items()}
        violations = []
        for (location, name), parameter in sorted(operation.parameters.items()):
            if location != "header":
                continue
            value = by_lower_name.get(name.lower())
            if value is not None:
                violations += self._check_parameter_values(operation, location, name, [value])
            elif parameter.get("required"):
                violations.append(f"{operation.operation_id}: required header {name!r} is missing")
        return violations

    def _parameter_schema(self, operation: _Operation, location: str, name: str) -> dict:
        """The parameter's schema with top-level $refs followed, so its type is visible."""
        parameter = operation.parameters[(location, name)]
        where = f"{operation.operation_id} {location} parameter {name!r}"
        if "schema" not in parameter:
            raise SpecError(f"{where}: parameters described by 'content' are not supported")
        style = parameter.get("style", "form" if location == "query" else "simple")
        explode = parameter.get("explode", style == "form")
        if (location, style, explode) not in (("query", "form", True), ("path", "simple", False),
                                             ("header", "simple", False)):
            raise SpecError(f"{where}: serialization style {style!r} explode={explode} is not supported")
        return self._resolve_schema(parameter["schema"], where)

    def _resolve_schema(self, schema: dict, where: str) -> dict:
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith(_SchemaConverter.COMPONENT_SCHEMA_PREFIX):
                raise SpecError(f"{where}: unsupported schema $ref {ref!r}")
            schema = self._resolve(schema, where)
        return schema

    def _parameter_validator(self, operation_id: str, location: str, name: str) -> jsonschema.Draft4Validator:
        key = (operation_id, "parameter", location, name)
        if key not in self._validators:
            operation = self._operations[operation_id]
            schema = self._parameter_schema(operation, location, name)
            where = f"{operation_id} {location} parameter {name!r}"
            if schema.get("type") == "array" and location != "query":
                raise SpecError(f"{where}: array parameters are only supported in the query")
            if schema.get("type") == "object":
                raise SpecError(f"{where}: object parameters are not supported")
            self._validators[key] = self._converter.validator(self._converter.convert(schema, where), where)
        return self._validators[key]

    def _check_parameter_values(self, operation: _Operation, location: str, name: str, values: list[str]) -> list:
        where = f"{operation.operation_id}: {location} parameter {name!r}"
        validator = self._parameter_validator(operation.operation_id, location, name)
        parameter = operation.parameters[(location, name)]
        schema = self._parameter_schema(operation, location, name)
        violations = []
        if not parameter.get("allowEmptyValue") and "" in values:
            violations.append(f"{where}: empty value not allowed")
            values = [value for value in values if value != ""]
            if not values:
                return violations
        is_array = schema.get("type") == "array"
        if not is_array and len(values) > 1:
            violations.append(f"{where}: given {len(values)} times but is not an array")
        item_type = self._resolve_schema(schema.get("items", {}), where).get("type") if is_array \
            else schema.get("type")
        try:
            typed = [_parse_parameter_text(value, item_type) for value in values]
        except _Unparseable as error:
            return violations + [f"{where}: {error}"]
        instance = typed if is_array else typed[0]
        return violations + _schema_violations(validator, instance, where)

    # -- request body --------------------------------------------------------------------------------------------

    def _check_request_body(self, operation: _Operation, body: bytes, content_type: str | None) -> list[str]:
        where = f"{operation.operation_id} request body"
        request_body = operation.request_body
        if request_body is None:
            return [f"{where}: sent {len(body)} bytes but the operation declares no body"] if body else []
        if not body:
            return [f"{where}: required body is missing"] if request_body.get("required") else []
        declared = request_body.get("content") or {}
        media_type = self._select_request_media(declared, content_type)
        if media_type is None:
            return [f"{where}: Content-Type {content_type!r} not accepted (declared: {', '.join(declared)})"]
        actual_type, params = parse_media_type(content_type) if content_type else ("", {})
        if _is_json_media(media_type.lower()):
            return _charset_violation(where, params) + \
                self._check_json(self._request_validator(operation.operation_id, media_type), body, where)
        if actual_type == "multipart/form-data" and not params.get("boundary"):
            return [f"{where}: multipart/form-data without a boundary parameter"]
        return []  # raw bytes: nothing more the spec constrains

    @staticmethod
    def _select_request_media(declared: dict, content_type: str | None) -> str | None:
        has_octet_stream = "application/octet-stream" in (media.lower() for media in declared)
        if content_type is None:
            return "application/octet-stream" if has_octet_stream else None
        actual, _ = parse_media_type(content_type)
        for media_type in declared:
            if _media_matches(media_type, actual):
                return media_type
        # lakeFS uploadObject takes any non-multipart body as raw bytes and stores its Content-Type.
        if has_octet_stream and not actual.startswith("multipart/"):
            return "application/octet-stream"
        return None

    def _request_validator(self, operation_id: str, media_type: str) -> jsonschema.Draft4Validator | None:
        key = (operation_id, "request", media_type)
        if key not in self._validators:
            media = self._operations[operation_id].request_body["content"][media_type]
            self._validators[key] = self._media_validator(media_type, media, f"{operation_id} request {media_type}")
        return self._validators[key]

    # -- responses -----------------------------------------------------------------------------------------------

    def _declared_response(self, operation: _Operation, status: int) -> tuple[str | None, dict | None]:
        responses = operation.responses
        for key in (str(status), f"{status // 100}XX"):
            if key in responses:
                return key, responses[key]
        extra = REAL_SERVER_EXTRA_RESPONSES.get((operation.operation_id, str(status)))
        if extra is not None:
            return str(status), extra
        if str(status) == _AUTH_FAILURE_STATUS and operation.requires_authentication:
            return str(status), _ERROR_JSON_RESPONSE
        # Every `default` in the lakeFS spec describes a server error, so it must not absorb a success or redirect
        # status the spec forgot: those have to be declared explicitly.
        if status >= 400 and "default" in responses:
            return "default", responses["default"]
        return None, None

    def _check_response_body(self, operation, status_key, response, content_type, body, where) -> list[str]:
        declared = response.get("content") or {}
        if not declared:
            return [f"{where}: the spec declares no body, got {len(body)} bytes"] if body else []
        if content_type is None:
            return [f"{where}: body declared as {', '.join(declared)} but no Content-Type was sent"]
        actual, params = parse_media_type(content_type)
        media_type = self._select_response_media(declared, actual)
        if media_type is None:
            return [f"{where}: Content-Type {content_type!r} not declared (declared: {', '.join(declared)})"]
        validator = self._response_validator(operation.operation_id, status_key, media_type, response)
        kind = _media_kind(media_type, declared[media_type], where)
        if kind == "json":
            return _charset_violation(where, params) + self._check_json(validator, body, where)
        if kind == "text":
            return _charset_violation(where, params) + self._check_text(validator, body, where)
        return []  # binary

    @staticmethod
    def _select_response_media(declared: dict, actual: str) -> str | None:
        for media_type in declared:
            if media_type.lower() == actual:
                return media_type
        for media_type in declared:
            if _media_matches(media_type, actual):
                return media_type
        # getObject declares application/octet-stream, but lakeFS serves each object with its stored Content-Type.
        for media_type in declared:
            if media_type.lower() == "application/octet-stream":
                return media_type
        # createBranch declares text/html; lakeFS v1.84 sends its commit id as text/plain.
        if actual == "text/plain":
            for media_type in declared:
                if media_type.lower() == "text/html":
                    return media_type
        return None

    def _response_validator(self, operation_id, status_key, media_type, response=None):
        key = (operation_id, "response", status_key, media_type)
        if key not in self._validators:
            operation = self._operations[operation_id]
            response = response if response is not None else operation.responses[status_key]
            media = response["content"][media_type]
            where = f"{operation_id} response {status_key} {media_type}"
            self._validators[key] = self._media_validator(media_type, media, where)
        return self._validators[key]

    def _media_validator(self, media_type: str, media: dict, where: str) -> jsonschema.Draft4Validator | None:
        """Compile the schema of one media type; binary and multipart bodies have nothing to validate."""
        kind = _media_kind(media_type, media, where)
        if kind in ("binary", "multipart"):
            return None
        schema = self._converter.convert(media.get("schema", {}), where)
        return self._converter.validator(schema, where)

    @staticmethod
    def _check_json(validator, body: bytes, where: str) -> list[str]:
        try:
            instance = parse_strict_json(body)
        except ValueError as error:
            return [f"{where}: invalid JSON: {error}"]
        return _schema_violations(validator, instance, where)

    @staticmethod
    def _check_text(validator, body: bytes, where: str) -> list[str]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            return [f"{where}: body is not UTF-8 text: {error}"]
        return _schema_violations(validator, text, where)

    # -- used by the unit tests to compile every schema up front -------------------------------------------------

    def _compile_operation(self, operation_id: str) -> int:
        """Compile every parameter, request body and response schema of one operation; returns how many."""
        operation = self._operations[operation_id]
        compiled = 0
        for location, name in operation.parameters:
            if location not in ("query", "path", "header"):
                raise SpecError(f"{operation_id}: {location} parameters are not supported")
            self._parameter_validator(operation_id, location, name)
            compiled += 1
        _check_path_parameters_cover_template(operation)
        for media_type in (operation.request_body or {}).get("content", {}):
            self._request_validator(operation_id, media_type)
            compiled += 1
        for status_key, response in operation.responses.items():
            for media_type in response.get("content") or {}:
                self._response_validator(operation_id, status_key, media_type)
                compiled += 1
        return compiled


def _media_kind(media_type: str, media: dict, where: str) -> str:
    essence = media_type.lower()
    schema = media.get("schema") or {}
    if _is_json_media(essence):
        return "json"
    if essence.startswith("multipart/"):
        return "multipart"
    if essence == "application/octet-stream" or schema.get("format") == "binary":
        return "binary"
    if schema.get("type") == "string" and (essence.startswith("text/") or essence == "application/text"):
        return "text"
    raise SpecError(f"{where}: media type {media_type!r} with schema {schema!r} is not supported")


def _template_segment(segment: str) -> tuple[str | None, str | None]:
    """'{ref}' -> (None, 'ref'); 'objects' -> ('objects', None). Partial templates like 'a{b}' are refused."""
    if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
        return None, segment[1:-1]
    if "{" in segment or "}" in segment:
        raise SpecError(f"path segment {segment!r}: templates must fill a whole segment")
    return segment, None


def _match_segments(template_segments: tuple, segments: list[str]) -> dict | None:
    if len(template_segments) != len(segments):
        return None
    path_params = {}
    for (literal, name), segment in zip(template_segments, segments):
        if name is None:
            if segment != literal:
                return None
        elif segment == "":
            return None  # a path parameter is never empty
        else:
            path_params[name] = segment
    return path_params


def _check_path_parameters_cover_template(operation: _Operation) -> None:
    in_template = {name for _, name in map(_template_segment, operation.template.split("/")[1:]) if name}
    declared = {name for location, name in operation.parameters if location == "path"}
    if in_template != declared:
        raise SpecError(f"{operation.operation_id}: template parameters {sorted(in_template)} "
                        f"!= declared path parameters {sorted(declared)}")

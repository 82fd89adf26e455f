"""Unit tests of the conformance checker alone (no server): each test feeds it traffic that is known to be right or
known to be wrong according to swagger.yml and checks the verdict, so a broken checker fails here first."""
import json
import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import conformance  # noqa: E402  (needs the sys.path entry above)

SPEC_PATH = os.path.join(HERE, "swagger.yml")


@pytest.fixture(scope="module")
def spec():
    return conformance.Spec(SPEC_PATH)


def write_spec(tmp_path, paths_yaml: str, schemas_yaml: str = "{}") -> str:
    """A minimal OpenAPI document, for rules the real spec has no example of."""
    text = (
        "openapi: 3.0.0\n"
        "info: {title: t, version: '1'}\n"
        f"components:\n  schemas: {schemas_yaml}\n"
        f"paths:\n{paths_yaml}"
    )
    path = tmp_path / "spec.yml"
    path.write_text(text)
    return str(path)


def object_stats(**overrides):
    stats = {"path": "d/file", "path_type": "object", "physical_address": "s3://bucket/data/abc",
             "checksum": "0cc175b9c0f1b6a831c399e269772661", "size_bytes": 1, "mtime": 1700000000,
             "content_type": "text/plain", "metadata": {"::lakefs::client-mtime": "1700000000"}}
    stats.update(overrides)
    return stats


def listing(results):
    return json.dumps({"pagination": {"has_more": False, "next_offset": "", "results": len(results),
                                      "max_per_page": 1000},
                       "results": results}).encode()


def request_violations(spec, method, raw_path, query=None, headers=None, body=b"", content_type=None):
    route = spec.match(method, raw_path)
    assert route is not None, f"{method} {raw_path} should match an operation"
    return spec.check_request(route, query or {}, headers or {}, body, content_type)


# ------------------------------------------------------------------------------------------------ loading / compile


def test_spec_loads_fast_and_knows_the_filesystem_operations():
    started = time.monotonic()
    loaded = conformance.Spec(SPEC_PATH)
    assert time.monotonic() - started < 2.0
    ids = loaded.operation_ids()
    assert len(ids) == 134
    assert {"listObjects", "statObject", "getObject", "headObject", "uploadObject", "deleteObject", "commit",
            "createBranch", "updateObjectUserMetadata", "linkPhysicalAddress"} <= ids


def test_every_operation_compiles_all_its_schemas(spec):
    compiled_total = 0
    for operation_id in sorted(spec.operation_ids()):
        compiled_total += spec._compile_operation(operation_id)
        operation = spec._operations[operation_id]
        for status_key, response in operation.responses.items():
            for media_type in response.get("content") or {}:
                validator = spec._response_validator(operation_id, status_key, media_type)
                is_raw = conformance._media_kind(media_type, response["content"][media_type], "") == "binary"
                assert (validator is None) == is_raw, (operation_id, status_key, media_type)
    # 134 operations, most with several parameters and JSON responses: a silent skip would show as a low count.
    assert compiled_total > 900


def test_unknown_schema_keyword_is_refused_not_ignored(tmp_path):
    path = write_spec(tmp_path, "  /x:\n    get:\n      operationId: getX\n      responses:\n"
                                "        '200': {description: ok}\n",
                      schemas_yaml="{Thing: {type: string, contentEncoding: base64}}")
    with pytest.raises(conformance.SpecError, match="contentEncoding"):
        conformance.Spec(path)


# ------------------------------------------------------------------------------------------------------- matching


def test_match_decodes_tilde_in_ref(spec):
    route = spec.match("GET", "/repositories/demo/refs/main%7E1/objects/ls")
    assert route.operation_id == "listObjects"
    assert route.path_params == {"repository": "demo", "ref": "main~1"}
    assert route.template == "/repositories/{repository}/refs/{ref}/objects/ls"


def test_match_decodes_caret_in_ref(spec):
    route = spec.match("GET", "/repositories/demo/refs/main%5E2/objects/stat")
    assert route.operation_id == "statObject"
    assert route.path_params["ref"] == "main^2"


def test_match_keeps_encoded_slash_inside_one_segment(spec):
    route = spec.match("GET", "/repositories/demo/commits/feature%2Fx")
    assert route.operation_id == "getCommit"
    assert route.path_params == {"repository": "demo", "commitId": "feature/x"}
    # The same value unencoded is two segments, and no template has that shape.
    assert spec.match("GET", "/repositories/demo/commits/feature/x") is None


def test_match_unknown_path_returns_none(spec):
    assert spec.match("GET", "/repositories/demo/refs/main/objects/nope") is None
    assert spec.match("GET", "/repositories/demo/refs/main/objects/ls/") is None  # trailing slash
    assert spec.match("GET", "/repositories//branches") is None  # empty path parameter


def test_match_wrong_method_returns_none(spec):
    assert spec.match("DELETE", "/repositories/demo/refs/main/objects/ls") is None
    assert spec.match("PATCH", "/repositories/demo/branches/main/objects") is None


def test_match_head_selects_head_object(spec):
    assert spec.match("HEAD", "/repositories/demo/refs/main/objects").operation_id == "headObject"
    assert spec.match("get", "/repositories/demo/refs/main/objects").operation_id == "getObject"


def test_literal_segment_wins_over_template(tmp_path):
    # The templated path comes first in the file, so a first-match implementation would pick it.
    path = write_spec(tmp_path,
                      "  /auth/users/{userId}:\n"
                      "    parameters: [{in: path, name: userId, required: true, schema: {type: string}}]\n"
                      "    get: {operationId: getUser, responses: {'200': {description: ok}}}\n"
                      "    delete: {operationId: deleteUser, responses: {'204': {description: ok}}}\n"
                      "  /auth/users/current:\n"
                      "    get: {operationId: getCurrent, responses: {'200': {description: ok}}}\n")
    synthetic = conformance.Spec(path)
    assert synthetic.match("GET", "/auth/users/current").operation_id == "getCurrent"
    assert synthetic.match("GET", "/auth/users/current").path_params == {}
    assert synthetic.match("GET", "/auth/users/alice").path_params == {"userId": "alice"}
    # OpenAPI picks the path before the method: the literal path has no DELETE, so nothing matches.
    assert synthetic.match("DELETE", "/auth/users/current") is None


# ------------------------------------------------------------------------------------------------------- requests


def test_valid_list_objects_request_passes(spec):
    assert request_violations(spec, "GET", "/repositories/demo/refs/main/objects/ls",
                              {"prefix": [""], "delimiter": ["/"], "amount": ["1000"], "after": ["d/a"],
                               "user_metadata": ["true"], "presign": ["false"]}) == []


def test_unknown_query_parameter_fails(spec):
    violations = request_violations(spec, "GET", "/repositories/demo/refs/main/objects/ls", {"recursive": ["true"]})
    assert len(violations) == 1 and "'recursive' is not declared" in violations[0]


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"])
def test_go_parse_bool_values_pass(spec, value):
    assert request_violations(spec, "GET", "/repositories/demo/refs/main/objects/stat",
                              {"path": ["a"], "presign": [value]}) == []


@pytest.mark.parametrize("value", ["yes", "tRUE", "on", "2", " true", ""])
def test_bad_boolean_fails(spec, value):
    violations = request_violations(spec, "GET", "/repositories/demo/refs/main/objects/stat",
                                    {"path": ["a"], "presign": [value]})
    assert len(violations) == 1 and "'presign'" in violations[0]


@pytest.mark.parametrize("value,ok", [("1000", True), ("-1", True), ("1001", False), ("-2", False),
                                      ("10.5", False), ("ten", False)])
def test_amount_is_bounded_by_the_spec(spec, value, ok):
    violations = request_violations(spec, "GET", "/repositories/demo/branches", {"amount": [value]})
    assert (violations == []) == ok, violations


def test_missing_required_path_on_stat_object_fails(spec):
    violations = request_violations(spec, "GET", "/repositories/demo/refs/main/objects/stat")
    assert violations == ["statObject: required query parameter 'path' is missing"]


def test_empty_path_value_fails_but_empty_prefix_is_allowed(spec):
    assert request_violations(spec, "GET", "/repositories/demo/refs/main/objects/stat", {"path": [""]}) \
        == ["statObject: query parameter 'path': empty value not allowed"]
    assert request_violations(spec, "GET", "/repositories/demo/refs/main/objects/ls", {"prefix": [""]}) == []


def test_repeated_scalar_parameter_fails_but_array_parameter_may_repeat(spec):
    repeated = request_violations(spec, "GET", "/repositories/demo/refs/main/objects/stat", {"path": ["a", "b"]})
    assert len(repeated) == 1 and "given 2 times" in repeated[0]
    assert request_violations(spec, "GET", "/repositories/demo/refs/main/commits",
                              {"objects": ["a", "b"], "prefixes": ["d/"], "limit": ["true"]}) == []


def test_date_time_query_parameter_is_checked(spec):
    ok = request_violations(spec, "GET", "/repositories/demo/refs/main/commits",
                            {"since": ["2024-05-01T10:00:00.123456789+02:00"]})
    bad = request_violations(spec, "GET", "/repositories/demo/refs/main/commits", {"since": ["2024-13-01T00:00:00Z"]})
    assert ok == [] and len(bad) == 1 and "date-time" in bad[0]


def test_range_header_pattern_is_checked_case_insensitively(spec):
    path = "/repositories/demo/refs/main/objects"
    assert request_violations(spec, "GET", path, {"path": ["a"]}, {"range": "bytes=0-1023"}) == []
    bad = request_violations(spec, "GET", path, {"path": ["a"]}, {"Range": "0-1023"})
    assert len(bad) == 1 and "'Range'" in bad[0]


@pytest.mark.parametrize("part,ok", [("1", True), ("10000", True), ("0", False), ("10001", False), ("x", False)])
def test_integer_path_parameter_is_checked(spec, part, ok):
    violations = request_violations(spec, "PUT", f"/repositories/demo/branches/main/staging/pmpu/u1/parts/{part}",
                                    {"path": ["big"]}, body=b'{"physical_address": "s3://b/x"}',
                                    content_type="application/json")
    assert (violations == []) == ok, violations


def test_valid_commit_creation_passes(spec):
    body = json.dumps({"message": "snapshot", "metadata": {"k": "v"}, "date": 1700000000,
                       "allow_empty": True}).encode()
    assert request_violations(spec, "POST", "/repositories/demo/branches/main/commits", body=body,
                              content_type="application/json; charset=utf-8") == []


@pytest.mark.parametrize("body", [b'{"message": "x"', b"", b'{"message": NaN}', b'{"message": "a", "message": "b"}',
                                  b'\xff{"message": "x"}'])
def test_bad_json_commit_body_fails(spec, body):
    violations = request_violations(spec, "POST", "/repositories/demo/branches/main/commits", body=body,
                                    content_type="application/json")
    assert len(violations) == 1 and ("invalid JSON" in violations[0] or "missing" in violations[0]), violations


@pytest.mark.parametrize("document,field", [({"metadata": {}}, "message"), ({"message": 7}, "message"),
                                            ({"message": "x", "date": True}, "date"),
                                            ({"message": "x", "metadata": {"k": 1}}, "metadata")])
def test_commit_body_breaking_the_schema_fails(spec, document, field):
    violations = request_violations(spec, "POST", "/repositories/demo/branches/main/commits",
                                    body=json.dumps(document).encode(), content_type="application/json")
    assert len(violations) == 1 and field in violations[0], violations


def test_json_body_needs_a_json_content_type(spec):
    body = b'{"message": "x"}'
    path = "/repositories/demo/branches/main/commits"
    assert len(request_violations(spec, "POST", path, body=body, content_type="text/plain")) == 1
    assert len(request_violations(spec, "POST", path, body=body, content_type=None)) == 1


def test_upload_object_accepts_any_raw_content_type_and_multipart(spec):
    path = "/repositories/demo/branches/main/objects"
    query = {"path": ["d/f.csv"]}
    assert request_violations(spec, "POST", path, query, body=b"a,b\n", content_type="text/csv") == []
    assert request_violations(spec, "POST", path, query, body=b"raw", content_type=None) == []
    assert request_violations(spec, "POST", path, query, body=b"--xx\r\n...",
                              content_type="multipart/form-data; boundary=xx") == []
    assert len(request_violations(spec, "POST", path, query, body=b"--xx",
                                  content_type="multipart/form-data")) == 1  # no boundary
    assert len(request_violations(spec, "POST", path, query, body=b"--xx",
                                  content_type="multipart/mixed; boundary=xx")) == 1


def test_body_on_operation_without_request_body_fails(spec):
    violations = request_violations(spec, "GET", "/repositories/demo/refs/main/objects/ls", body=b"{}",
                                    content_type="application/json")
    assert len(violations) == 1 and "declares no body" in violations[0]


def test_optional_body_may_be_absent(spec):
    assert request_violations(spec, "POST", "/repositories/demo/refs/dev/merge/main") == []


# ------------------------------------------------------------------------------------------------------ responses


def test_valid_object_stats_list_passes(spec):
    body = listing([object_stats(),
                    {"path": "d/sub/", "path_type": "common_prefix", "physical_address": "", "checksum": "",
                     "mtime": 0}])
    assert spec.check_response("listObjects", 200, "application/json", body) == []


def test_missing_required_field_fails(spec):
    stats = object_stats()
    del stats["checksum"]
    violations = spec.check_response("listObjects", 200, "application/json", listing([stats]))
    assert violations == ["listObjects response 200: $.results[0]: 'checksum' is a required property"]


@pytest.mark.parametrize("field,value", [("size_bytes", "12"), ("mtime", True), ("mtime", 1.5), ("mtime", 1.0),
                                         ("mtime", 2 ** 63), ("path_type", "directory"), ("checksum", None),
                                         ("metadata", {"k": 1})])
def test_wrong_type_fails(spec, field, value):
    violations = spec.check_response("statObject", 200, "application/json",
                                     json.dumps(object_stats(**{field: value})).encode())
    assert len(violations) == 1 and f"$.{field}" in violations[0], violations


def test_nullable_field_accepts_null(spec):
    body = json.dumps({"physical_address": "s3://b/x", "presigned_url": None}).encode()
    assert spec.check_response("getPhysicalAddress", 200, "application/json", body) == []


def test_undeclared_status_fails(spec):
    assert len(spec.check_response("healthCheck", 200, None, b"")) == 1
    # uploadObject has a `default` response, but it describes server errors and must not absorb a 200.
    violations = spec.check_response("uploadObject", 200, "application/json", json.dumps(object_stats()).encode())
    assert len(violations) == 1 and "not declared" in violations[0]


def test_204_with_body_fails(spec):
    assert spec.check_response("deleteObject", 204, None, b"") == []
    violations = spec.check_response("deleteObject", 204, "application/json", b'{"message": "ok"}')
    assert len(violations) == 1 and "body" in violations[0]


def test_declared_bodyless_response_with_body_fails(spec):
    assert spec.check_response("listObjects", 429, None, b"") == []
    assert len(spec.check_response("listObjects", 429, "application/json", b'{"message": "slow down"}')) == 1


def test_create_branch_201_text_html_passes(spec):
    commit_id = b"a" * 64
    assert spec.check_response("createBranch", 201, "text/html", commit_id) == []
    assert spec.check_response("createBranch", 201, "text/html; charset=utf-8", commit_id) == []


def test_create_branch_201_other_content_type_fails(spec):
    assert len(spec.check_response("createBranch", 201, "application/json", b'"abc"')) == 1
    assert len(spec.check_response("createBranch", 201, None, b"abc")) == 1
    assert len(spec.check_response("createBranch", 201, "text/html", b"\xff\xfe")) == 1  # not text


def test_json_response_content_type_is_checked(spec):
    body = json.dumps(object_stats()).encode()
    assert spec.check_response("statObject", 200, "application/json; charset=utf-8", body) == []
    assert len(spec.check_response("statObject", 200, "text/plain", body)) == 1
    assert len(spec.check_response("statObject", 200, None, body)) == 1
    assert len(spec.check_response("statObject", 200, "application/json; charset=latin-1", body)) == 1


def test_error_responses_must_carry_an_error_body(spec):
    assert spec.check_response("statObject", 404, "application/json", b'{"message": "not found"}') == []
    assert len(spec.check_response("statObject", 404, "application/json", b'{"error": "not found"}')) == 1
    assert spec.check_response("statObject", 503, "application/json", b'{"message": "slow down"}') == []  # default
    assert len(spec.check_response("statObject", 500, "application/json", b"")) == 1


def test_get_object_body_is_raw_bytes_in_any_content_type(spec):
    assert spec.check_response("getObject", 200, "image/png", b"\x89PNG\r\n") == []
    assert spec.check_response("getObject", 206, "application/octet-stream", b"\x00\x01") == []
    assert spec.check_response("getObject", 304, None, b"") == []
    assert len(spec.check_response("getObject", 200, None, b"data")) == 1  # Content-Type is still required


def test_head_object_body_is_never_validated_but_status_is(spec):
    assert spec.check_response("headObject", 200, "text/plain", b"ignored") == []
    assert spec.check_response("headObject", 404, None, b"") == []
    assert len(spec.check_response("headObject", 302, None, b"")) == 1


def test_update_user_metadata_accepts_spec_201_and_real_server_204(spec):
    assert spec.check_response("updateObjectUserMetadata", 201, None, b"") == []
    assert spec.check_response("updateObjectUserMetadata", 204, None, b"") == []
    assert len(spec.check_response("updateObjectUserMetadata", 204, "application/json", b"{}")) == 1
    assert len(spec.check_response("updateObjectUserMetadata", 200, None, b"")) == 1


def test_auth_failure_401_allowed_only_where_credentials_are_required(spec):
    error = b'{"message": "error authenticating request"}'
    assert spec.check_response("getCurrentUser", 401, "application/json", error) == []  # missing from the spec
    assert len(spec.check_response("getCurrentUser", 401, "application/json", b"{}")) == 1
    assert len(spec.check_response("healthCheck", 401, "application/json", error)) == 1  # security: []


def test_merge_conflict_body_is_a_merge_result(spec):
    assert spec.check_response("mergeIntoBranch", 409, "application/json", b'{"reference": ""}') == []
    violations = spec.check_response("mergeIntoBranch", 409, "application/json", b'{"message": "conflict"}')
    assert len(violations) == 1 and "reference" in violations[0]


def test_unknown_operation_is_reported(spec):
    assert spec.check_response("noSuchOperation", 200, None, b"") == ["unknown operationId 'noSuchOperation'"]
    route = conformance.Route(operation_id="noSuchOperation", path_params={}, template="/x")
    assert spec.check_request(route, {}, {}, b"", None) == ["unknown operationId 'noSuchOperation'"]

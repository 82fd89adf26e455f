"""lakeFS API handlers (by operationId) for setup, auth, repositories, branches, tags, commits,
diffs, merges and resets. Each handler takes (ctx, req) and returns a protocol.Response or raises
store.ApiError; status codes and messages follow API-NOTES.md. Never read object data here.
"""
import datetime

import views
from protocol import error_response, json_response, no_content, pagination, Response
from store import ApiError, reword_not_found
from tree import prefix_end

VERSION = "1.84.0"


def healthCheck(ctx, req):
    return no_content()


def _storage_config(ctx):
    cfg = ctx.config
    # As lakeFS v1.84 on S3 answers with a single blockstore: an empty id and description, presign for
    # the UI off (its default, blockstore.s3.disable_pre_signed_ui), imports supported (the S3 adapter
    # can; this server does not implement them: 501), and default_namespace_prefix "" when unset.
    # tests/server/test_vs_real.py compares this with lakeFS on S3.
    return {"blockstore_type": "s3", "blockstore_id": "", "blockstore_description": "",
            "blockstore_namespace_example": "s3://example-bucket/",
            "blockstore_namespace_ValidityRegex": "^s3://", "pre_sign_support": cfg.presign,
            "pre_sign_support_ui": False, "import_support": True,
            "import_validity_regex": "^s3://", "pre_sign_multipart_upload": cfg.presign,
            "default_namespace_prefix": cfg.default_namespace_prefix or ""}


def getConfig(ctx, req):
    return json_response(200, {
        "version_config": {"version": VERSION, "version_context": "lakeFS"},  # no upgrade_recommended: lakeFS's
        "storage_config": _storage_config(ctx),
        "storage_config_list": [],  # lakeFS with a single blockstore: empty
        "ui_config": {},
        "capabilities_config": {},
    })


def getStorageConfig(ctx, req):
    return json_response(200, _storage_config(ctx))


def getLakeFSVersion(ctx, req):
    return json_response(200, {"version": VERSION, "upgrade_recommended": False, "version_context": "lakeFS"})


def getSetupState(ctx, req):
    return json_response(200, {"state": "initialized", "comm_prefs_missing": False,
                               "login_config": {"RBAC": "simplified", "login_url": "/auth/login",
                                                "login_cookie_names": ["internal_auth_session"],
                                                "logout_url": "/logout"}})


def getCurrentUser(ctx, req):
    return json_response(200, {"user": {"id": req.user, "creation_date": ctx.store.created, "email": "",
                                        "friendly_name": ""}})


def login(ctx, req):
    body = req.json()
    if body.get("access_key_id") != ctx.config.access_key_id or \
            body.get("secret_access_key") != ctx.config.secret_access_key:
        return error_response(401, "error authenticating request")
    token, expiry = ctx.auth.issue_token(ctx.config.user_id)
    cookie = "internal_auth_session=%s; Path=/; Expires=%s; HttpOnly; SameSite=Lax" % (
        token, datetime.datetime.fromtimestamp(expiry, datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT"))
    return json_response(200, {"token": token, "token_expiration": expiry}, headers={"Set-Cookie": cookie})


# --- repositories ---------------------------------------------------------------------------------

def listRepositories(ctx, req):
    prefix, after, amount = req.pagination()
    with ctx.store.read() as db:
        repos, has_more = ctx.store.list_repos(db, prefix, after, amount, req.q("search", ""))
    return json_response(200, {"pagination": pagination(repos, has_more, repos[-1]["id"] if repos else ""),
                               "results": repos})


# A single-blockstore lakeFS knows one storage id: "" (config.SingleBlockstoreID; Blockstore.GetStorageIDs).
STORAGE_IDS = ("",)


def createRepository(ctx, req):
    body = req.json()
    name, namespace = body.get("name") or "", body.get("storage_namespace") or ""
    # lakeFS Controller.CreateRepository order: an existing repository is a conflict first, then an
    # unknown storage id (graveler.ErrInvalidStorageID -> 400), then the namespace, then the names.
    with ctx.store.read() as db:
        try:
            ctx.store.get_repo(db, name)
        except ApiError:
            pass
        else:
            raise ApiError(409, "error creating repository: not unique")
    storage_id = body.get("storage_id") or ""
    if storage_id not in STORAGE_IDS:
        raise ApiError(400, "storage id: invalid value: validation error")
    if not namespace.startswith("s3://") or len(namespace) <= len("s3://"):
        raise ApiError(400, "invalid storage namespace %r: expected an s3:// location" % namespace)
    repo = ctx.store.create_repo(name, namespace, body.get("default_branch") or "main",
                                 bool(body.get("read_only")), req.qbool("bare"), storage_id)
    return json_response(201, repo)


def getRepository(ctx, req):
    with ctx.store.read() as db:
        return json_response(200, ctx.store.get_repo(db, req.params["repository"]))


def deleteRepository(ctx, req):
    ctx.store.delete_repo(req.params["repository"], req.qbool("force"))
    return no_content()


# --- branches and tags ------------------------------------------------------------------------------

def _ref_list(ctx, req, table, **kw):
    prefix, after, amount = req.pagination()
    with ctx.store.read() as db:
        refs, has_more = ctx.store.list_refs(db, table, req.params["repository"], prefix, after, amount, **kw)
    return json_response(200, {"pagination": pagination(refs, has_more, refs[-1]["id"] if refs else ""),
                               "results": refs})


def listBranches(ctx, req):
    return _ref_list(ctx, req, "branches", show_hidden=req.qbool("show_hidden"))


def createBranch(ctx, req):
    body = req.json()
    commit_id = ctx.store.create_branch(req.params["repository"], body.get("name") or "", body.get("source") or "",
                                        bool(body.get("force")), bool(body.get("hidden")))
    return Response(201, commit_id.encode(), "text/plain; charset=utf-8")  # lakeFS's, though the spec says text/html


def getBranch(ctx, req):
    with ctx.store.read() as db:
        return json_response(200, ctx.store.get_branch(db, req.params["repository"], req.params["branch"]))


def deleteBranch(ctx, req):
    ctx.store.delete_branch(req.params["repository"], req.params["branch"], req.qbool("force"))
    return no_content()


def resetBranch(ctx, req):
    body = req.json()
    kind = body.get("type")
    if kind not in ("object", "common_prefix", "reset"):
        raise ApiError(400, "request body has an error: type: value is not one of the allowed values")
    if kind != "reset" and not body.get("path"):
        raise ApiError(400, "missing path")
    ctx.store.reset(req.params["repository"], req.params["branch"], kind, body.get("path") or "",
                    bool(body.get("force")))
    return no_content()


def hardResetBranch(ctx, req):
    ctx.store.hard_reset(req.params["repository"], req.params["branch"], req.required("ref"), req.qbool("force"))
    return no_content()


def listTags(ctx, req):
    return _ref_list(ctx, req, "tags")


def createTag(ctx, req):
    body = req.json()
    tag = ctx.store.create_tag(req.params["repository"], body.get("id") or "", body.get("ref") or "",
                               bool(body.get("force")))
    return json_response(201, tag)


def getTag(ctx, req):
    with ctx.store.read() as db:
        return json_response(200, ctx.store.get_tag(db, req.params["repository"], req.params["tag"]))


def deleteTag(ctx, req):
    ctx.store.delete_tag(req.params["repository"], req.params["tag"], req.qbool("force"))
    return no_content()


# --- commits ------------------------------------------------------------------------------------------

def getCommit(ctx, req):
    with ctx.store.read() as db:
        ctx.store.get_repo(db, req.params["repository"])
        return json_response(200, reword_not_found(
            lambda: ctx.store.resolve_commit(db, req.params["repository"], req.params["commitId"]), "commit not found"))


def logCommits(ctx, req):
    _, after, amount = req.pagination()
    since = req.q("since") or None
    if since:
        try:
            since = int(datetime.datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp())
        except ValueError:
            raise ApiError(400, "parameter \"since\" in query has an error: invalid date-time")
    repo = req.params["repository"]
    with ctx.store.read() as db:
        ctx.store.get_repo(db, repo)
        commits, has_more = views.log_commits(
            ctx.store, db, repo, req.params["ref"], after, amount, req.qlist("objects"), req.qlist("prefixes"),
            req.qbool("first_parent"), since, req.q("stop_at") or None)
    if req.qbool("limit"):
        has_more = False
    return json_response(200, {"pagination": pagination(commits, has_more, commits[-1]["id"] if commits else ""),
                               "results": commits})


def commit(ctx, req):
    body = req.json()
    if req.q("source_metarange"):
        raise ApiError(501, "source_metarange is not implemented by lakefs_server")
    if "message" not in body:
        raise ApiError(400, "request body has an error: property \"message\" is missing")
    result = ctx.store.commit(req.params["repository"], req.params["branch"], req.user, body.get("message") or "",
                              body.get("metadata") or {}, body.get("date"), bool(body.get("allow_empty")),
                              bool(body.get("force")))
    return json_response(201, result)


# --- diff, merge --------------------------------------------------------------------------------------

def _diff_response(req, changes, prefix, after, amount, include_right_stats=False, removed_size=True):
    results, has_more = views.diff_page(changes, prefix, req.q("delimiter", "") or "", after, amount,
                                        include_right_stats, removed_size)
    return json_response(200, {"pagination": pagination(results, has_more, results[-1]["path"] if results else ""),
                               "results": results})


def diffBranch(ctx, req):
    prefix, after, amount = req.pagination()
    repo, branch = req.params["repository"], req.params["branch"]
    with ctx.store.read() as db:
        ctx.store.get_repo(db, repo)
        head = ctx.store.branch_commit(db, repo, branch)
        changes = views.uncommitted_changes(ctx.store, db, repo, branch, head, max(prefix, after),
                                            prefix_end(prefix))
    # lakeFS: uncommittedDiffIterator yields the staging tombstone (Value nil) for a removal, so
    # Controller.DiffBranch reports size_bytes 0 for it.
    return _diff_response(req, changes, prefix, after, amount, removed_size=False)


def diffRefs(ctx, req):
    prefix, after, amount = req.pagination()
    repo = req.params["repository"]
    kind = req.q("type", "three_dot") or "three_dot"
    if kind not in ("two_dot", "three_dot"):
        raise ApiError(400, "parameter \"type\" in query has an error: value is not one of the allowed values")
    with ctx.store.read() as db:
        ctx.store.get_repo(db, repo)
        changes = views.diff_refs(ctx.store, db, repo, req.params["leftRef"], req.params["rightRef"], kind,
                                  max(prefix, after), prefix_end(prefix))
    return _diff_response(req, changes, prefix, after, amount, req.qbool("include_right_stats"))


def mergeIntoBranch(ctx, req):
    body = req.json()
    commit_id = ctx.store.merge(req.params["repository"], req.params["sourceRef"], req.params["destinationBranch"],
                                req.user, body.get("message") or "", body.get("metadata") or {},
                                body.get("strategy") or "", bool(body.get("allow_empty")), bool(body.get("force")),
                                bool(body.get("squash_merge")))
    return json_response(200, {"reference": commit_id})


HANDLERS = {name: fn for name, fn in dict(globals()).items()
            if callable(fn) and not name.startswith("_") and name[0].islower()
            and getattr(fn, "__module__", None) == __name__}

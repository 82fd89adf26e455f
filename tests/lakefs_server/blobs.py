"""Object data for lakefs_server: files under DATA_DIR/objects/, physical addresses, signatures.
Uploads are streamed to a temp file in chunks while their MD5 is computed; reads are served by
seek + chunked copy. Never hold a whole object in memory, and never trust an address or a
presigned URL without checking its HMAC.
"""
import base64
import calendar
import hashlib
import hmac
import os
import re
import secrets
import shutil
import time
import urllib.parse

CHUNK = 1024 * 1024
LINK_ADDRESS_TTL = 24 * 3600
OID_RE = re.compile(r"^[0-9a-f]{32}(?:_[0-9a-f]{1,12}_[0-9a-f]{32})?$")
MIN_PART_SIZE = 5 * 1024 * 1024


class BlobError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Blobs:
    def __init__(self, data_dir, secret):
        self.root = os.path.join(data_dir, "objects")
        self.tmp = os.path.join(self.root, "tmp")
        self.mpu_root = os.path.join(self.root, "mpu")
        self.secret = secret
        for d in (self.root, self.tmp, self.mpu_root):
            os.makedirs(d, exist_ok=True)

    # --- signing ------------------------------------------------------------------------------
    def sign(self, *parts):
        msg = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]

    # --- files --------------------------------------------------------------------------------
    @staticmethod
    def new_oid():
        return secrets.token_hex(16)

    def path_of(self, oid):
        if not OID_RE.match(oid):
            raise BlobError(400, "InvalidObjectName", "invalid object id")
        return os.path.join(self.root, oid[:2], oid)

    def exists(self, oid):
        return os.path.isfile(self.path_of(oid))

    def size(self, oid):
        return os.path.getsize(self.path_of(oid))

    def mtime(self, oid):
        return os.path.getmtime(self.path_of(oid))

    def etag(self, oid):
        """The S3-style ETag recorded when the object was written ('' if unknown)."""
        try:
            with open(self.path_of(oid) + ".etag") as f:
                return f.read().strip()
        except OSError:
            return ""

    def _write_etag(self, oid, etag):
        with open(self.path_of(oid) + ".etag", "w") as f:
            f.write(etag)

    def receive(self, reader, length, oid=None):
        """Stream length bytes (None: read to EOF of reader) into the object oid.
        Returns (oid, size, md5_hex)."""
        oid = oid or self.new_oid()
        tmp_path = os.path.join(self.tmp, secrets.token_hex(8))
        md5 = hashlib.md5()
        size = 0
        try:
            with open(tmp_path, "wb") as out:
                while length is None or size < length:
                    want = CHUNK if length is None else min(CHUNK, length - size)
                    chunk = reader.read(want)
                    if not chunk:
                        if length is not None:
                            raise BlobError(400, "IncompleteBody", "request body ended early")
                        break
                    md5.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            self._install(tmp_path, self.path_of(oid))
            self._write_etag(oid, md5.hexdigest())
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        return oid, size, md5.hexdigest()

    def _install(self, tmp_path, final):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(tmp_path, final)

    def clone(self, oid):
        """A new oid with the same bytes (hard link: copies cost nothing, data is immutable)."""
        new = self.new_oid()
        final = self.path_of(new)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.link(self.path_of(oid), final)
        except OSError:
            shutil.copyfile(self.path_of(oid), final)
        self._write_etag(new, self.etag(oid))
        return new

    def send(self, oid, writer, start, length):
        with open(self.path_of(oid), "rb") as src:
            src.seek(start)
            left = length
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    break
                writer.write(chunk)
                left -= len(chunk)

    # --- physical addresses -------------------------------------------------------------------
    @staticmethod
    def address(namespace, oid):
        return namespace.rstrip("/") + "/data/" + oid

    @staticmethod
    def oid_of(address):
        oid = address.rsplit("/", 1)[-1]
        return oid if OID_RE.match(oid) else None

    def link_address(self, namespace, repo, branch, path):
        """getPhysicalAddress: an address whose object id carries an HMAC bound to repo/branch/path."""
        base = self.new_oid()
        expiry = "%x" % (int(time.time()) + LINK_ADDRESS_TTL)
        sig = self.sign("link", repo, branch, path, base, expiry)
        return self.address(namespace, base + "_" + expiry + "_" + sig)

    def verify_link_address(self, namespace, repo, branch, path, address):
        """Returns the oid, or raises BlobError(400) like lakeFS (invalid / expired link address)."""
        prefix = namespace.rstrip("/") + "/data/"
        oid = address[len(prefix):] if address.startswith(prefix) else ""
        parts = oid.split("_")
        if len(parts) != 3 or not OID_RE.match(oid):
            raise BlobError(400, "", "address is not signed: link address invalid")
        base, expiry, sig = parts
        if not hmac.compare_digest(sig, self.sign("link", repo, branch, path, base, expiry)):
            raise BlobError(400, "", "address is not signed: link address invalid")
        if int(expiry, 16) < time.time():
            raise BlobError(400, "", "link address expired")
        return oid

    # --- presigned URLs -----------------------------------------------------------------------
    def presign(self, base_url, method, oid, ttl, extra=None):
        """Returns (url, expiry). The URL looks like an S3 SigV4 presigned URL."""
        now = int(time.time())
        query = dict(extra or {})
        query.update({"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                      "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
                      "X-Amz-Expires": str(int(ttl)), "X-Amz-SignedHeaders": "host"})
        query["X-Amz-Signature"] = self._url_signature(method, oid, query)
        return base_url + "/_presigned/" + oid + "?" + urllib.parse.urlencode(sorted(query.items())), now + int(ttl)

    def _url_signature(self, method, oid, query):
        fields = sorted((k, v) for k, v in query.items() if k != "X-Amz-Signature")
        return self.sign("presign", method, oid, urllib.parse.urlencode(fields))

    def verify_presigned(self, method, oid, query):
        """query: dict name -> str. Raises BlobError(403) on bad or expired signatures."""
        sig = query.get("X-Amz-Signature", "")
        check_method = "PUT" if method == "PUT" else "GET"
        if not sig or not hmac.compare_digest(sig, self._url_signature(check_method, oid, query)):
            raise BlobError(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the signature you provided.")
        try:
            issued = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
            expires = int(query["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise BlobError(403, "AccessDenied", "Request is missing required fields")
        if time.time() > issued + expires:
            raise BlobError(403, "AccessDenied", "Request has expired")

    # --- multipart uploads --------------------------------------------------------------------
    def part_path(self, upload_id, number):
        if not re.match(r"^[0-9a-f]{32}$", upload_id):
            raise BlobError(404, "NoSuchUpload", "The specified upload does not exist.")
        return os.path.join(self.mpu_root, upload_id, "%05d" % int(number))

    def receive_part(self, upload_id, number, reader, length):
        folder = os.path.join(self.mpu_root, upload_id)
        if not os.path.isdir(folder):
            raise BlobError(404, "NoSuchUpload", "The specified upload does not exist.")
        tmp_oid = self.new_oid()
        _, size, md5 = self.receive(reader, length, tmp_oid)
        os.replace(self.path_of(tmp_oid), self.part_path(upload_id, number))
        os.unlink(self.path_of(tmp_oid) + ".etag")
        return size, md5

    def start_multipart(self, upload_id):
        os.makedirs(os.path.join(self.mpu_root, upload_id), exist_ok=True)

    def complete_multipart(self, upload_id, oid, parts):
        """parts: [(number, etag)] ascending. Concatenates into oid; returns (size, s3 etag)."""
        folder = os.path.join(self.mpu_root, upload_id)
        if not os.path.isdir(folder):
            raise BlobError(404, "NoSuchUpload", "The specified upload does not exist.")
        if not parts:
            raise BlobError(400, "MalformedXML", "You must specify at least one part")
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise BlobError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        digests, total = [], 0
        tmp_path = os.path.join(self.tmp, secrets.token_hex(8))
        try:
            with open(tmp_path, "wb") as out:
                for i, (number, etag) in enumerate(parts):
                    path = self.part_path(upload_id, number)
                    if not os.path.isfile(path):
                        raise BlobError(400, "InvalidPart", "part %d was not uploaded" % number)
                    md5 = hashlib.md5()
                    size = 0
                    with open(path, "rb") as src:
                        for chunk in iter(lambda: src.read(CHUNK), b""):
                            md5.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                    if md5.hexdigest() != etag.strip().strip('"').lower():
                        raise BlobError(400, "InvalidPart", "etag of part %d does not match" % number)
                    if size < MIN_PART_SIZE and i + 1 < len(parts):
                        raise BlobError(400, "EntityTooSmall",
                                        "Your proposed upload is smaller than the minimum allowed object size.")
                    digests.append(md5.digest())
                    total += size
            self._install(tmp_path, self.path_of(oid))
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        shutil.rmtree(folder, ignore_errors=True)
        etag = hashlib.md5(b"".join(digests)).hexdigest() + "-%d" % len(parts)
        self._write_etag(oid, etag)
        return total, etag

    def abort_multipart(self, upload_id):
        shutil.rmtree(os.path.join(self.mpu_root, upload_id), ignore_errors=True)

"""Authentication for lakefs_server: HTTP Basic with the configured access key, and HS256 JWT
tokens from /auth/login (Bearer header or internal_auth_session cookie), signed with a key kept
in the data dir so tokens survive a restart. Never accept an unsigned or expired token.
"""
import hashlib
import hmac
import json
import secrets
import time

from blobs import b64url, b64url_decode

LOGIN_DURATION = 7 * 24 * 3600


class Auth:
    def __init__(self, access_key_id, secret_access_key, user_id, key):
        self.access_key_id, self.secret_access_key, self.user_id = access_key_id, secret_access_key, user_id
        self.key = hmac.new(key, b"jwt:" + secret_access_key.encode(), hashlib.sha256).digest()

    def issue_token(self, user, duration=LOGIN_DURATION):
        now = int(time.time())
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps({"sub": user, "aud": "login", "iat": now, "exp": now + duration,
                                     "jti": secrets.token_hex(8)}).encode())
        signing_input = header + "." + payload
        sig = b64url(hmac.new(self.key, signing_input.encode(), hashlib.sha256).digest())
        return signing_input + "." + sig, now + duration

    def verify_token(self, token):
        """(user, expiry) or None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = b64url(hmac.new(self.key, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            return None
        if not isinstance(claims, dict) or int(claims.get("exp", 0)) < time.time():
            return None
        return claims.get("sub"), int(claims["exp"])

    def authenticate(self, headers):
        """(user id, token expiry or None) for valid credentials, else None."""
        authorization = headers.get("Authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                key, _, secret = b64url_decode(value.strip().replace("+", "-").replace("/", "_")).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if hmac.compare_digest(key, self.access_key_id) and hmac.compare_digest(secret, self.secret_access_key):
                return self.user_id, None
            return None
        if scheme.lower() == "bearer":
            return self.verify_token(value.strip())
        for item in (headers.get("Cookie") or "").split(";"):
            name, _, token = item.strip().partition("=")
            if name == "internal_auth_session" and token:
                return self.verify_token(token)
        return None

"""A loopback server that speaks the Hub endpoints huggingface_hub 2.4 uses for a dataset repo.

Reached with the real `HfApi(endpoint=...)`: create a repo, preupload (every file "regular", so
content arrives base64 in the commit's NDJSON body), commit (added and deleted files), repo info, tree listing, HEAD/GET
of resolve URLs, and whoami for the tokens in `users`. Tests switch on an outage (every call
503), 429s on commits, or a commit that lands but whose answer is lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    paths: list[str]
    at: float


@dataclass
class Repo:
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1].oid if self.commits else "0" * 40


class HubServer:
    def __init__(self, token: str = "hf_test_token") -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lock = threading.Lock()
        self.down = False  # every request answers 503
        self.commit_429 = 0  # the next N commits answer 429 with Retry-After
        self.lose_commit_answers = 0  # the next N commits land, then answer 502
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: set[str] = set()
        self.users = {token: "dailies-test"}  # token -> username, for whoami
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def commits(self, repo_id: str) -> list[Commit]:
        with self.lock:
            return list(self.repos[repo_id].commits) if repo_id in self.repos else []

    def files(self, repo_id: str) -> dict[str, bytes]:
        with self.lock:
            return dict(self.repos[repo_id].files) if repo_id in self.repos else {}

    def metadata_rows(self, repo_id: str) -> list[dict]:
        """Every row of every metadata.jsonl in the repo."""
        with self.lock:
            files = dict(self.repos[repo_id].files)
        rows = []
        for path, content in sorted(files.items()):
            if path.endswith("metadata.jsonl"):
                rows += [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        return rows

    def add_commit(
        self, repo_id: str, files: dict[str, bytes], message: str = "seed", deleted: tuple[str, ...] = ()
    ) -> str:
        repo = self.repos.setdefault(repo_id, Repo(private=False))
        with self.lock:
            for path in deleted:
                del repo.files[path]
            repo.files.update(files)
            oid = hashlib.sha1(f"{repo_id}{len(repo.commits)}{message}".encode()).hexdigest()
            repo.commits.append(Commit(oid, message, sorted([*files, *deleted]), time.time()))
        return oid

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                self._json(status, {"error": message}, {"X-Error-Message": message, **(headers or {})})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _repo(self, repo_id: str, write: bool = False) -> Repo | None:
                repo = hub.repos.get(repo_id)
                authed = self.headers.get("authorization") == f"Bearer {hub.token}"
                if repo is None or (repo.private and not authed) or (write and not authed):
                    self._error(404 if repo is None or not authed else 403, "Repository not found")
                    return None
                return repo

            def _route(self) -> None:
                url = urlsplit(self.path)
                path, query = unquote(url.path), parse_qs(url.query)
                hub.requests.append((self.command, path))
                if self.headers.get("authorization"):
                    hub.auth_headers.add(self.headers["authorization"])
                if hub.down:
                    self._body()
                    return self._error(503, "Service Unavailable")
                parts = path.strip("/").split("/")
                if self.command == "GET" and path == "/api/whoami-v2":
                    name = hub.users.get(self.headers.get("authorization", "").removeprefix("Bearer "))
                    user = {"type": "user", "name": name, "fullname": name, "avatarUrl": "", "orgs": []}
                    return self._json(200, user) if name else self._error(401, "Invalid")
                if self.command == "POST" and path == "/api/repos/create":
                    return self._create(json.loads(self._body()))
                if self.command == "POST" and path == "/api/validate-yaml":
                    self._body()
                    return self._json(200, {"errors": [], "warnings": []})
                if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
                    repo_id, rest = "/".join(parts[2:4]), parts[4:]
                    if self.command == "GET" and (not rest or rest[0] == "revision"):
                        return self._info(repo_id)
                    if self.command == "POST" and rest and rest[0] == "preupload":
                        return self._preupload(repo_id)
                    if self.command == "POST" and rest and rest[0] == "commit":
                        return self._commit(repo_id)
                    if self.command == "GET" and rest and rest[0] == "tree":
                        recursive = query.get("recursive", [""])[0].lower() == "true"
                        return self._tree(repo_id, "/".join(rest[2:]), recursive)
                if parts[:1] == ["datasets"] and len(parts) >= 6 and parts[3] == "resolve":
                    return self._resolve("/".join(parts[1:3]), "/".join(parts[5:]))
                self._error(404, f"no route {self.command} {path}")

            do_GET = do_POST = do_HEAD = _route

            def _create(self, body: dict) -> None:
                if self.headers.get("authorization") != f"Bearer {hub.token}":
                    return self._error(401, "Invalid credentials")
                repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
                if repo_id in hub.repos:
                    # The Hub's 409 carries the repo's URL too.
                    body = {"error": "You already created this dataset repo", "url": f"{hub.url}/datasets/{repo_id}"}
                    return self._json(409, body)
                with hub.lock:
                    hub.repos[repo_id] = Repo(private=bool(body.get("private")))
                self._json(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})

            def _info(self, repo_id: str) -> None:
                if repo := self._repo(repo_id):
                    self._json(200, {"id": repo_id, "sha": repo.sha, "private": repo.private})

            def _preupload(self, repo_id: str) -> None:
                body = json.loads(self._body())
                if self._repo(repo_id, write=True):
                    files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
                    self._json(200, {"files": files, "commitOid": hub.repos[repo_id].sha})

            def _commit(self, repo_id: str) -> None:
                lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
                if not self._repo(repo_id, write=True):
                    return
                if hub.commit_429:
                    hub.commit_429 -= 1
                    message = "You have exceeded the rate limit for repository commits"
                    return self._error(429, message, {"Retry-After": "1"})
                header = next(item["value"] for item in lines if item["key"] == "header")
                files, deleted = {}, []
                for item in lines:
                    if item["key"] == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    elif item["key"] == "deletedFile":
                        deleted.append(item["value"]["path"])
                    elif item["key"] != "header":
                        return self._error(400, f"unsupported commit operation {item['key']}")
                # The whole commit is refused when it deletes a file the repo does not hold.
                if missing := [p for p in deleted if p not in hub.repos[repo_id].files]:
                    return self._error(404, f"{missing[0]} does not exist", {"X-Error-Code": "EntryNotFound"})
                oid = hub.add_commit(repo_id, files, header["summary"], tuple(deleted))
                if hub.lose_commit_answers:
                    hub.lose_commit_answers -= 1
                    return self._error(502, "Bad Gateway")
                self._json(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

            def _tree(self, repo_id: str, folder: str, recursive: bool) -> None:
                repo = self._repo(repo_id)
                if repo is None:
                    return
                prefix = folder.rstrip("/") + "/" if folder else ""
                entries: dict[str, dict] = {}
                for path, content in repo.files.items():
                    if not path.startswith(prefix):
                        continue
                    rest = path[len(prefix) :].split("/")
                    for depth in range(1, len(rest)):
                        sub = prefix + "/".join(rest[:depth])
                        if recursive or depth == 1:
                            entries.setdefault(sub, {"type": "directory", "path": sub, "oid": "0" * 40})
                    if recursive or len(rest) == 1:
                        oid = git_blob_oid(content)
                        entries[path] = {"type": "file", "path": path, "size": len(content), "oid": oid}
                if folder and not entries:
                    return self._error(404, f"{folder} does not exist on main", {"X-Error-Code": "EntryNotFound"})
                self._json(200, sorted(entries.values(), key=lambda e: e["path"]))

            def _resolve(self, repo_id: str, path: str) -> None:
                repo = self._repo(repo_id)
                if repo is None:
                    return
                content = repo.files.get(path)
                if content is None:
                    return self._error(404, "Entry not found", {"X-Error-Code": "EntryNotFound"})
                headers = {"ETag": f'"{git_blob_oid(content)}"', "X-Repo-Commit": repo.sha}
                self._send(200, content, headers)

        return Handler

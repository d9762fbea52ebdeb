"""Who may use the bus, and for what: credentials, access control lists and TLS files.

Issue 14: with an anonymous broker anyone who reached its port could publish a FILL in a
street utility's name; every replica booked it, and the street's own record under that key
was then dropped everywhere as a duplicate. So every node logs on with its own username
and password, and the broker's ACL lets it publish only under its own name:

* its records, digest and resend answers (``rec/<role>/<node>``, ``digest/<role>/<node>``,
  ``resend/+/<node>``) and its resend requests (``req/+/<node>``), the sender being the
  last topic level (:mod:`replication.wire`);
* what its role addresses (heartbeats of its own name, commands to street utilities): the
  caller adds those topics, since they belong to the roles built on the bus;
* read access to the cluster's topics. Monitoring clients (probes, benches, tests that
  listen) get a read-only login; anonymous clients are refused.

The same grants configure both brokers we run: mosquitto (``password_file`` in its
``$7$`` PBKDF2-SHA512 format, as ``mosquitto_passwd`` writes it, and ``acl_file``) and the
embedded amqtt broker (its ``FileAuthPlugin`` with argon2 hashes, ``AnonymousAuthPlugin``
refusing anonymous clients, ``TopicAccessControlListPlugin`` for publish and subscribe).
Every file holding a secret is written readable by its owner only (0600).

TLS between nodes and broker is optional: :func:`make_tls` makes a local CA and a server
certificate for the broker's address with ``openssl`` (on every Debian machine; no Python
dependency); nodes then verify the broker against that CA.

Cost: a login is checked once per connection; a publish costs mosquitto one ACL lookup.
``fixgw bench replication`` (which runs its broker with logins and ACL since) in two
interleaved pairs, anonymous main then this, on a shared 2-core machine (load ~14):
replicated 3,591 and 4,486 records/s before, 5,679 and 4,248 after; lag at 1,000/s p50
43/42 ms before, 45/30 ms after, p99 99/110 ms before, 91/73 ms after: no cost to be seen
in the noise.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import ssl
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from replication.record import Role
from replication.wire import Topics

MONITOR_USER = "monitor"
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default for $7$ hashes


class AuthError(RuntimeError):
    """A secret or certificate file is missing, unreadable or not what was expected."""


@dataclass(frozen=True, slots=True)
class BusLogin:
    """How a client logs on to the broker: username, password, and for TLS the CA to trust."""

    username: str
    password: str
    ca_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def __repr__(self) -> str:  # never print a password in a log line or a traceback
        return f"BusLogin({self.username!r}, tls={self.ca_file is not None})"


@dataclass(frozen=True, slots=True)
class Grant:
    """One broker user: its password and the topic filters it may publish and subscribe to."""

    username: str
    password: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Grant({self.username!r}, publish={self.publish!r}, subscribe={self.subscribe!r})"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The broker's certificate and key, and the CA that signed it (what nodes trust)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class BrokerAccess:
    """Everything a broker needs to refuse strangers: users with their ACL, and TLS files."""

    grants: tuple[Grant, ...]
    tls: TlsFiles | None = None

    def login(self, username: str) -> BusLogin:
        for g in self.grants:
            if g.username == username:
                return BusLogin(g.username, g.password, self.tls.ca if self.tls else None)
        raise KeyError(f"no broker user {username!r}")


# -- grants -------------------------------------------------------------------------------


def node_publish_topics(topics: Topics, node: str, role: Role) -> tuple[str, ...]:
    """The replication topics ``node`` publishes on: all under its own name."""
    return (topics.records(role, node), topics.digest(role, node), topics.requests("+", node),
            topics.resends("+", node))


def node_grant(cluster: str, node: str, role: Role, password: str, extra_publish: Iterable[str] = ()) -> Grant:
    topics = Topics(cluster)
    return Grant(node, password, node_publish_topics(topics, node, role) + tuple(extra_publish),
                 (topics.prefix + "#",))


def monitor_grant(cluster: str, password: str, username: str = MONITOR_USER) -> Grant:
    """Read-only: hears every topic of the cluster, may publish nothing."""
    return Grant(username, password, (), (Topics(cluster).prefix + "#",))


def new_password() -> str:
    return secrets.token_urlsafe(24)


# -- secret files -------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)  # a directory of secrets: the owner's only
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_secret(path: Path, what: str) -> str:
    """The secret in ``path`` (first line); AuthError naming the file if missing or empty."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise AuthError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if not text:
        raise AuthError(f"{path}: {what} is empty")
    return text.splitlines()[0]


def ensure_secret(path: Path) -> str:
    """The password in ``path``, made (0600) if the file does not exist yet."""
    if not path.exists():
        write_private(path, new_password() + "\n")
    return read_secret(path, "the broker password")


# -- mosquitto ----------------------------------------------------------------------------


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A mosquitto 2 password hash: ``$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>``."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_password_file(grants: Iterable[Grant]) -> str:
    return "".join(f"{g.username}:{mosquitto_hash(g.password)}\n" for g in grants)


def mosquitto_acl(grants: Iterable[Grant]) -> str:
    """An ``acl_file``: nothing for anonymous clients, each user its own topics."""
    lines = ["# written by fixgw: each node publishes only under its own name"]
    for g in grants:
        lines.append(f"\nuser {g.username}")
        lines += [f"topic write {t}" for t in g.publish]
        lines += [f"topic read {t}" for t in g.subscribe]
    return "\n".join(lines) + "\n"


def mosquitto_access_lines(access: BrokerAccess, directory: Path) -> list[str]:
    """Write the password and ACL files into ``directory`` (0600); the config lines naming them."""
    pw, acl = directory / "passwords", directory / "acl"
    write_private(pw, mosquitto_password_file(access.grants))
    write_private(acl, mosquitto_acl(access.grants))
    lines = ["allow_anonymous false", f"password_file {pw}", f"acl_file {acl}"]
    if access.tls is not None:
        lines += [f"cafile {access.tls.ca}", f"certfile {access.tls.cert}", f"keyfile {access.tls.key}"]
    return lines


# -- amqtt --------------------------------------------------------------------------------


def amqtt_password_file(grants: Iterable[Grant]) -> str:
    from argon2 import PasswordHasher  # amqtt's own dependency (its FileAuthPlugin verifies argon2)

    # Our passwords are random 144-bit tokens, not words a person chose: key stretching adds
    # nothing against guessing them. argon2's defaults (64 MiB, 3 passes) took 1.4-1.6 s per
    # login here, in amqtt's event loop: ten nodes logging on at once timed out (10 s).
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return "".join(f"{g.username}:{hasher.hash(g.password)}\n" for g in grants)


def amqtt_config(host: str, port: int, access: BrokerAccess | None, directory: Path) -> str:
    """amqtt's broker config (JSON, which its YAML loader reads), with the password file
    written into ``directory`` (0600)."""
    listener: dict[str, object] = {"type": "tcp", "bind": f"{host}:{port}"}
    plugins: dict[str, object]
    if access is None:
        plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    else:
        pw = directory / "passwords.amqtt"
        write_private(pw, amqtt_password_file(access.grants))
        plugins = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(pw)},
            "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                "publish_acl": {g.username: list(g.publish) for g in access.grants},
                "acl": {g.username: list(g.subscribe) for g in access.grants},
            },
        }
        if access.tls is not None:
            listener.update(ssl=True, cafile=str(access.tls.ca), certfile=str(access.tls.cert),
                            keyfile=str(access.tls.key))
    return json.dumps({"listeners": {"default": listener}, "plugins": plugins}, indent=2) + "\n"


# -- TLS ----------------------------------------------------------------------------------


def make_tls(directory: Path, host: str) -> TlsFiles:
    """A local CA and a certificate for the broker at ``host`` (kept if already there).

    Keys are EC P-256, written 0600; the server certificate names ``host`` (and localhost)
    as subject alternative names, which is what clients check.
    """
    files = TlsFiles(directory / "ca.crt", directory / "broker.crt", directory / "broker.key")
    if all(p.exists() for p in (files.ca, files.cert, files.key)):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try:
        ipaddress_san = _san(host)
        _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(files.ca), "-days", "3650",
                 "-subj", "/CN=fixgw local CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        csr = directory / "broker.csr"
        _openssl("req", *ec, "-keyout", str(files.key), "-out", str(csr), "-subj", f"/CN={host}")
        ext = directory / "broker.ext"
        ext.write_text(f"subjectAltName={ipaddress_san}\nextendedKeyUsage=serverAuth\n"
                       "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(files.cert), "-days", "825", "-extfile", str(ext))
        csr.unlink()
        ext.unlink()
    except FileNotFoundError:
        raise AuthError("openssl is not installed: it makes the broker's TLS certificates "
                        "(Debian: apt-get install openssl)") from None
    for p in (ca_key, files.key):
        os.chmod(p, 0o600)
    return files


def _san(host: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return f"IP:{host},DNS:localhost"
    except ValueError:
        return f"DNS:{host},DNS:localhost"


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AuthError(f"openssl {args[0]} failed: {proc.stderr.strip()[-500:]}")


__all__ = [
    "MONITOR_USER",
    "AuthError",
    "BrokerAccess",
    "BusLogin",
    "Grant",
    "TlsFiles",
    "amqtt_config",
    "ensure_secret",
    "make_tls",
    "monitor_grant",
    "mosquitto_access_lines",
    "mosquitto_acl",
    "mosquitto_hash",
    "new_password",
    "node_grant",
    "node_publish_topics",
    "read_secret",
    "write_private",
]

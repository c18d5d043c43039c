"""The serving hot path's Redis client: replies matched by order, stalls and drops detected."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from feature_store.multiplexed import (
    MultiplexedRedis,
    RedisReplyError,
    RedisUnavailableError,
    reporting_unavailable,
    without_password,
)
from tests.conftest import redis_url


def test_concurrent_commands_get_their_own_replies():
    async def main():
        client = MultiplexedRedis(redis_url())
        try:
            replies = await asyncio.gather(*(client.execute("ECHO", f"m{i}") for i in range(500)))
            assert replies == [f"m{i}".encode() for i in range(500)]
            batches = await asyncio.gather(*(client.execute_all([("ECHO", f"a{i}"), ("ECHO", f"b{i}")])
                                             for i in range(100)), client.execute("ECHO", "alone"))
            assert batches[:100] == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(100)]
            assert batches[100] == b"alone" and await client.execute_all([]) == []
            assert await client.execute_all([("ECHO", "one")]) == [b"one"]
            with pytest.raises(RedisReplyError, match="unknown command"):
                await client.execute("NOSUCHCOMMAND")
            with pytest.raises(RedisReplyError, match="unknown command"):  # the batch's first error
                await client.execute_all([("ECHO", "a"), ("NOSUCHCOMMAND",), ("ECHO", "b")])
            assert await client.execute("ECHO", "still fine") == b"still fine"
        finally:
            await client.close()

    asyncio.run(main())


def test_a_server_that_stops_answering_fails_the_waiters_and_the_next_call_reconnects():
    async def main():
        answering = True
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while data := await reader.read(1024):
                if answering:
                    writer.write(b"+PONG\r\n" * data.count(b"PING"))
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = MultiplexedRedis(f"redis://127.0.0.1:{port}", timeout_seconds=0.4)
        try:
            assert await client.execute("PING") == b"PONG"
            answering = False
            started = time.monotonic()
            results = await asyncio.gather(*(client.execute("PING") for _ in range(3)), return_exceptions=True)
            waited = time.monotonic() - started
            assert all(isinstance(r, RedisUnavailableError) for r in results)
            assert 0.4 <= waited < 1.0  # the timeout, plus at most one watchdog period
            answering = True
            assert await client.execute("PING") == b"PONG"
            assert connections == 2
        finally:
            await client.close()
            await asyncio.sleep(0.05)  # lets the handler see the hang-up and close its side
            server.close()
            await server.wait_closed()

    asyncio.run(main())


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@cache.internal:6380/2", "redis://cache.internal:6380/2"),
    ("rediss://app:s3cret@cache.internal/0", "rediss://cache.internal/0"),
    ("redis://127.0.0.1:6379/0?password=s3cret&socket_timeout=1", "redis://127.0.0.1:6379/0"),
    ("redis://:s3cret@[::1]:6379/0", "redis://[::1]:6379/0"),
    ("unix:///run/redis.sock?db=2&password=s3cret", "unix:///run/redis.sock"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_unavailable_messages_never_carry_the_password(url, shown):
    # the message of a RedisUnavailableError is part of the 503 a client receives; redis-py takes a
    # password from the user info or from the query string
    assert without_password(url) == shown


def test_reporting_unavailable_hides_a_query_string_password():
    async def refuse():
        raise redis.ConnectionError("Connection refused")

    with pytest.raises(RedisUnavailableError) as caught:
        asyncio.run(reporting_unavailable(refuse(), "redis://127.0.0.1:6379/0?password=s3cret"))
    assert "s3cret" not in str(caught.value) and "redis://127.0.0.1:6379/0 is unavailable" in str(caught.value)


def test_timeouts_come_from_the_url_unless_given():
    assert MultiplexedRedis("redis://127.0.0.1:6379/0").timeout_seconds == 2.0
    from_url = MultiplexedRedis("redis://127.0.0.1:6379/0?socket_timeout=0.5&socket_connect_timeout=0.25")
    assert (from_url.timeout_seconds, from_url.connect_timeout_seconds) == (0.5, 0.25)
    given = MultiplexedRedis("redis://127.0.0.1:6379/0?socket_timeout=0.5", timeout_seconds=1.0)
    assert (given.timeout_seconds, given.connect_timeout_seconds) == (1.0, 1.0)


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:6379/0?ssl_cert_reqs=maybe",
                                 "rediss://127.0.0.1:6379/0?ssl_validate_ocsp=true",
                                 "rediss://127.0.0.1:6379/0?ssl_ca_cert=/etc/ca.pem"])
def test_tls_options_it_cannot_honour_fail_at_construction(url):
    with pytest.raises(ValueError, match="ssl_"):
        MultiplexedRedis(url)


def test_a_connect_that_hangs_names_the_address_and_the_timeout_and_leaves_no_socket_open():
    async def main():
        open_connections = 0

        async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal open_connections
            open_connections += 1
            await reader.read()  # until the client hangs up
            open_connections -= 1
            writer.close()

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # the password makes the client wait for AUTH's reply, which never comes
        client = MultiplexedRedis(f"redis://:s3cret@127.0.0.1:{port}/0?socket_connect_timeout=0.3")
        try:
            started = time.monotonic()
            with pytest.raises(RedisUnavailableError) as caught:
                await client.execute("PING")
            assert time.monotonic() - started < 1.0
            assert str(caught.value) == f"cannot connect to Redis at 127.0.0.1:{port} within 0.3 s"
            await asyncio.sleep(0.05)
            assert open_connections == 0
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_redis(directory: Path, port: int, *args: str) -> subprocess.Popen:
    """A private redis-server, answering on ``port`` within a few seconds or skipping the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    log = directory / f"redis-{port}.log"
    server = subprocess.Popen(["redis-server", "--port", "0", "--save", "", "--appendonly", "no",
                               "--dir", str(directory), "--logfile", str(log), *args])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = log.read_text() if log.exists() else ""
            if "tls" in output.lower() and "--tls-port" in args:
                pytest.skip(f"this redis-server has no TLS support: {output.strip()[-200:]}")
            pytest.fail(f"redis-server exited: {output.strip()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    pytest.fail("redis-server did not start within 5 s")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=5)


@pytest.fixture
def password_redis(tmp_path):
    port = _free_port()
    server = _start_redis(tmp_path, port, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "right")
    yield port
    _stop(server)


@pytest.mark.redis
def test_a_refused_auth_or_select_is_an_outage_and_closes_the_connection(password_redis):
    port = password_redis
    admin = redis.Redis(port=port, password="right")

    async def main():
        for url, command in [(f"redis://:wrong@127.0.0.1:{port}/0", "AUTH"),
                             (f"redis://:right@127.0.0.1:{port}/99", "SELECT")]:
            client = MultiplexedRedis(url)
            for _ in range(3):  # each request reconnects; none may leave a connection behind
                with pytest.raises(RedisUnavailableError) as caught:
                    await client.execute("PING")
                assert str(caught.value).startswith(f"Redis at 127.0.0.1:{port}: {command} failed: ")
                assert "wrong" not in str(caught.value) and "right" not in str(caught.value)
            await client.close()
        await asyncio.sleep(0.1)
        assert len(admin.client_list()) == 1  # the admin connection alone
        client = MultiplexedRedis(f"redis://:right@127.0.0.1:{port}/1")
        assert await client.execute("ECHO", "in") == b"in"
        await client.close()
        client = MultiplexedRedis(f"redis://127.0.0.1:{port}/0")  # no password, no SELECT: the GET is refused
        with pytest.raises(RedisUnavailableError, match="^NOAUTH"):
            await client.execute("GET", "k")
        await client.close()

    try:
        asyncio.run(main())
    finally:
        admin.close()


def _write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate it signed for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    x509 = pytest.importorskip("cryptography.x509", reason="the cryptography package makes the test certificates")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(certificate("test CA", ca_key, "test CA", ca_key, ca=True)
                         .public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate("127.0.0.1", server_key, "test CA", ca_key, ca=False)
                         .public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_redis(tmp_path):
    ca, cert, key = _write_certificates(tmp_path)
    port = _free_port()
    server = _start_redis(tmp_path, port, "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file",
                          str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                          "--tls-auth-clients", "no")
    yield port, ca
    _stop(server)


@pytest.mark.redis
def test_tls_options_mean_what_they_mean_to_redis_py(tls_redis):
    port, ca = tls_redis
    cases = [  # (URL, accepted); "localhost" is not among the certificate's names
        (f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", True),
        (f"rediss://127.0.0.1:{port}/0?ssl_ca_path={ca.parent}&ssl_ca_certs={ca}", True),
        (f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none", True),
        (f"rediss://localhost:{port}/0?ssl_ca_certs={ca}&ssl_check_hostname=false", True),
        (f"rediss://127.0.0.1:{port}/0", False),
        (f"rediss://localhost:{port}/0?ssl_ca_certs={ca}", False),
    ]

    async def fast_accepts(url: str) -> bool:
        client = MultiplexedRedis(url)
        try:
            return await client.execute("ECHO", "tls") == b"tls"
        except RedisUnavailableError as exc:
            assert "certificate verify failed" in str(exc) and f":{port}" in str(exc)
            return False
        finally:
            await client.close()

    def redis_py_accepts(url: str) -> bool:
        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return client.echo("tls") == b"tls"
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    for url, accepted in cases:
        assert (asyncio.run(fast_accepts(url)), redis_py_accepts(url)) == (accepted, accepted), url

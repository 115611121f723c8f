"""librdkafka's logs and errors through Python logging, each distinct message once; the quiet watch of
a command's first contact with the broker."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from streams.kafka.client_logs import LibrdkafkaLog, OncePerMessage, StartWatch, message_key, with_logging

REFUSED = (
    "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
    "Connection refused (after {ms}ms in state CONNECT{more})"
)


def test_repeats_that_differ_in_timings_and_counts_have_one_key() -> None:
    keys = {
        message_key(REFUSED.format(ms=ms, more=more))
        for ms in (0, 3, 1200)
        for more in ("", ", 1 identical error(s) suppressed", ", 17 identical error(s) suppressed")
    }
    assert keys == {"127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"}
    assert message_key("Broker: Not coordinator (x)") == "Broker: Not coordinator (x)"  # other brackets kept


def test_each_distinct_message_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    hooks = LibrdkafkaLog(logging.getLogger("test.librdkafka"))
    with caplog.at_level(logging.DEBUG, "test.librdkafka"):
        for ms in range(50):
            hooks.log(
                logging.ERROR,
                "%s [%s] %s",
                "FAIL",
                f"rdkafka#producer-{ms % 3}",
                REFUSED.format(ms=ms, more=""),
            )
        hooks.log(logging.WARNING, "%s [%s] %s", "REQTMOUT", "rdkafka#consumer-1", "Timed out 1 in-flight")
        for _ in range(5):
            hooks.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "FAIL: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        ),
        (logging.WARNING, "REQTMOUT: Timed out 1 in-flight"),
        (logging.WARNING, "kafka error _ALL_BROKERS_DOWN: 1/1 brokers are down"),
    ]
    assert hooks.seen.repeats("log:FAIL:" + message_key(REFUSED.format(ms=0, more=""))) == 50


def test_memory_of_seen_messages_is_bounded() -> None:
    seen = OncePerMessage(limit=3)
    assert all(seen.first(k) for k in "abc")
    assert not seen.first("a")
    assert seen.first("d")  # full: forgotten, so "d" starts a new memory
    assert seen.first("a")


def test_every_client_config_gets_the_hooks_and_keeps_its_own_error_cb() -> None:
    hooks = LibrdkafkaLog()
    plain = with_logging({"bootstrap.servers": "x:1"}, hooks)
    assert plain["logger"] is hooks and plain["error_cb"] == hooks.error
    calls: list[str] = []
    both = with_logging({"error_cb": lambda err: calls.append(err.str())}, hooks)
    both["error_cb"](KafkaError(KafkaError._TRANSPORT, "down"))
    assert calls == ["down"] and hooks.seen.repeats("error:-195:down") == 1


def test_the_start_watch_is_quiet_and_notes_an_authentication_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = StartWatch()
    config = with_logging({"logger": watch, "error_cb": watch.error})
    assert config["error_cb"] == watch.error  # not doubled by the process log
    with caplog.at_level(logging.INFO):
        watch.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", REFUSED.format(ms=0, more=""))
        watch.error(KafkaError(KafkaError._TRANSPORT, REFUSED.format(ms=4, more="")))
        assert watch.auth_failure == ""
        watch.error(KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED, "SASL authentication error: bad"))
    assert caplog.records == []
    assert watch.auth_failure == "SASL authentication error: bad"


def test_every_built_client_logs_through_python_once_per_message(caplog: pytest.LogCaptureFixture) -> None:
    """A real admin client against a closed port: librdkafka repeats the refusal every few ms; it reaches
    Python logging once, and nothing is written to stderr by librdkafka itself (checked by the CLI test)."""
    import socket
    import time

    from streams.kafka.client_logs import PROCESS_LOG
    from streams.kafka.clients import make_admin
    from streams.settings.model import load_settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings(bootstrap_servers=f"127.0.0.1:{port}", broker_flavor="kafka")
    PROCESS_LOG.seen = OncePerMessage()
    admin = make_admin(settings)
    with caplog.at_level(logging.DEBUG, "kcollect.librdkafka"):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            admin.poll(0.1)
    refused = [r.getMessage() for r in caplog.records if "Connection refused" in r.getMessage()]
    assert len(refused) == 2, refused  # one log line (FAIL) and one error callback (_TRANSPORT)
    assert PROCESS_LOG.seen.total() > len(refused)  # librdkafka did repeat itself: the repeats were dropped

"""librdkafka's own mock cluster (``rdkafka_mock.h``), driven through ctypes on the library that
confluent-kafka bundles: the one way to make a broker give one chosen error answer on demand.

Only for reproducing client bugs that need an error a real broker gives by chance (NOT_COORDINATOR
while a coordinator moves or loads). Everything else is tested on real brokers.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka

OFFSET_FETCH = 9  # ApiKey
NOT_COORDINATOR = 16  # error code


def bundled_librdkafka() -> Path:
    """The librdkafka shared object confluent-kafka's wheel loads."""
    libs = Path(os.path.dirname(confluent_kafka.__file__)).parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        raise FileNotFoundError(f"no bundled librdkafka under {libs}")
    return found[0]


@dataclass
class MockCluster:
    """A running mock cluster; ``bootstrap`` is its address for any client of this process."""

    lib: ctypes.CDLL
    handle: int
    bootstrap: str

    def create_topic(self, name: str, partitions: int) -> None:
        self.lib.rd_kafka_mock_topic_create(self.handle, name.encode(), partitions, 1)

    def push_errors(self, api_key: int, *errors: int) -> None:
        """The next ``len(errors)`` requests of ``api_key`` are answered with these errors, in order."""
        codes = (ctypes.c_int * len(errors))(*errors)
        self.lib.rd_kafka_mock_push_request_errors_array(self.handle, api_key, len(errors), codes)


def start_mock_cluster(brokers: int = 1) -> MockCluster:
    """A mock cluster of ``brokers`` brokers, alive as long as this process."""
    lib = ctypes.CDLL(str(bundled_librdkafka()))
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int16,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_int),
    ]
    errstr = ctypes.create_string_buffer(512)
    owner = lib.rd_kafka_new(0, lib.rd_kafka_conf_new(), errstr, len(errstr))  # a producer hosts it
    if not owner:
        raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
    handle = lib.rd_kafka_mock_cluster_new(owner, brokers)
    if not handle:
        raise RuntimeError("rd_kafka_mock_cluster_new failed")
    return MockCluster(lib, handle, lib.rd_kafka_mock_cluster_bootstraps(handle).decode())

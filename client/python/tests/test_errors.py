"""Errors as exceptions: per-event refusals, call statuses with the field
parsed from `field: reason`, UNAVAILABLE naming the address, and URLs and
settings refused before anything is dialled."""

from __future__ import annotations

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

import grpc  # noqa: E402

import tributary_client as trib  # noqa: E402
from tributary.v1 import ingest_pb2  # noqa: E402
from tributary_client._errors import from_rpc_error, split_field  # noqa: E402


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class ErrorsTest(unittest.TestCase):
    def test_event_rejected_from_an_event_error(self) -> None:
        error = ingest_pb2.EventError(
            code=ingest_pb2.EVENT_ERROR_CODE_SCHEMA_MISMATCH,
            field="ad_click.country",
            message="is not a field of any registered version",
        )
        rejected = trib.EventRejected.from_proto(error)
        self.assertIsInstance(rejected, trib.TributaryError)
        self.assertEqual(rejected.code, "SCHEMA_MISMATCH")
        self.assertEqual(rejected.field, "ad_click.country")
        self.assertEqual(str(rejected), "ad_click.country: is not a field of any registered version")
        unknown = trib.EventRejected.from_proto(ingest_pb2.EventError(code=99, message="new"))  # type: ignore[arg-type]
        self.assertEqual((unknown.code, unknown.field, str(unknown)), ("99", "", "new"))

    def test_split_field(self) -> None:
        self.assertEqual(split_field("page_size: must be at most 10000"), ("page_size", "must be at most 10000"))
        self.assertEqual(
            split_field("ad_click.ip_address: `x` is not an IPv4 or IPv6 address"),
            ("ad_click.ip_address", "`x` is not an IPv4 or IPv6 address"),
        )
        self.assertEqual(split_field("missing or invalid API key"), ("", "missing or invalid API key"))
        self.assertEqual(split_field("rate limit exceeded: this call"), ("", "rate limit exceeded: this call"))

    def test_statuses(self) -> None:
        url = "http://127.0.0.1:1"
        bad = from_rpc_error(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "start_time: is required"), url)
        self.assertIsInstance(bad, trib.StatusError)
        self.assertEqual((bad.code, bad.field, bad.message), ("INVALID_ARGUMENT", "start_time", "is required"))
        assert isinstance(bad, trib.StatusError)
        self.assertEqual(bad.status, grpc.StatusCode.INVALID_ARGUMENT)
        denied = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key"), url)
        self.assertEqual((denied.code, denied.field), ("UNAUTHENTICATED", ""))
        down = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection refused"), url)
        self.assertIsInstance(down, trib.Unavailable)
        self.assertEqual(str(down), f"cannot reach Tributary at {url}: Connection refused")

    def test_urls_and_settings(self) -> None:
        for url in ["ftp://host:1", "127.0.0.1:50051", "http://", "http://host:1/path", "http://host:99999"]:
            with self.subTest(url=url), self.assertRaises(trib.InvalidArgument) as refused:
                trib.Client(url)
            self.assertEqual(refused.exception.field, "url")
        with self.assertRaises(trib.InvalidArgument) as plain_ca:
            trib.Client("http://127.0.0.1:1", ca=b"-----BEGIN CERTIFICATE-----")
        self.assertEqual(plain_ca.exception.field, "ca")
        with self.assertRaises(trib.InvalidArgument):
            trib.Client("http://127.0.0.1:1", api_key="two\nlines")
        self.assertEqual(trib.Client("https://[::1]:8443").url, "https://[::1]:8443")
        self.assertEqual(trib.Client("http://127.0.0.1:1", api_key="k").metadata, (("authorization", "Bearer k"),))


if __name__ == "__main__":
    unittest.main()

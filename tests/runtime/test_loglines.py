"""The one log reader every command uses, against a brute-force reference: plain and gzip logs
(one or several members, flushed anywhere), read in any chunk size, cut at any byte."""

import gzip
import io
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.runtime.auditlog import LogLines

line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" "))


def reference(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines and the torn tail, the obvious way."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]], parts[-1]


def gzip_members(data: bytes, cuts: list[int], sync_points: list[int]) -> bytes:
    """``data`` as several gzip members (split at ``cuts``), each sync-flushed at ``sync_points``."""
    out = io.BytesIO()
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
            last = a
            for s in sorted({a + (p % (b - a + 1)) for p in sync_points}):
                gz.write(data[last:s])
                gz.flush(zlib.Z_SYNC_FLUSH)
                last = s
            gz.write(data[last:b])
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(line_text, max_size=30), tail=line_text, chunk=st.integers(1, 64))
def test_plain_logs_read_as_the_reference_splits_them(tmp_path_factory, lines, tail, chunk):
    data = b"".join(x + b"\n" for x in lines) + tail
    path = tmp_path_factory.mktemp("plain") / "log.jsonl"
    path.write_bytes(data)
    reader = LogLines(path, chunk_bytes=chunk)
    assert (list(reader), reader.torn) == reference(data)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(line_text, max_size=30), tail=line_text, chunk=st.integers(1, 64),
       cuts=st.lists(st.integers(0, 10_000), max_size=3), syncs=st.lists(st.integers(0, 10_000), max_size=4),
       cut_at=st.integers(0, 10_000))
def test_gzip_logs_read_whole_and_cut_anywhere_give_a_prefix(tmp_path_factory, lines, tail, chunk, cuts, syncs, cut_at):
    data = b"".join(x + b"\n" for x in lines) + tail
    packed = gzip_members(data, cuts, syncs)
    path = tmp_path_factory.mktemp("gz") / "log.jsonl.gz"
    path.write_bytes(packed)
    reader = LogLines(path, chunk_bytes=chunk)
    assert (list(reader), reader.torn) == reference(data)
    # Cut anywhere (a killed writer): never an error, always complete lines of the whole.
    path.write_bytes(packed[: cut_at % (len(packed) + 1)])
    got = list(LogLines(path, chunk_bytes=chunk))
    assert got == reference(data)[0][: len(got)]
    # A writer killed right after a sync flush (what AuditLog does each second): every line
    # written before the flush is readable, though the stream has no end.
    out = io.BytesIO()
    gz = gzip.GzipFile(fileobj=out, mode="wb", mtime=0)
    k = syncs[0] % (len(data) + 1) if syncs else len(data)
    gz.write(data[:k])
    gz.flush(zlib.Z_SYNC_FLUSH)
    path.write_bytes(out.getvalue())
    assert list(LogLines(path, chunk_bytes=chunk)) == reference(data[:k])[0]

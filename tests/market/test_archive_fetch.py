"""`execlab data fetch` against a loopback HTTP server laid out like data.binance.vision
(with range requests, as the real one has), then a replay of the fetched folder."""

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from framework.cli import main
from tests.support import read_records

T0_MS = 1_722_470_400_000  # 2024-08-01 00:00 UTC
DAY_MS = 86_400_000


def _book_csv(day: int, rows: int) -> str:
    lines = ["update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"]
    for i in range(rows):
        t = T0_MS + day * DAY_MS + i * 250
        lines.append(f"{day * 10_000 + i},{60000 + i % 7}.10,1.5,{60000 + i % 7}.20,2.5,{t},{t + 1}")
    return "\n".join(lines) + "\n"


def _trades_csv(day: int, rows: int) -> str:
    lines = ["id,price,qty,quote_qty,time,is_buyer_maker"]
    for i in range(rows):
        t = T0_MS + day * DAY_MS + i * 500 + 100
        lines.append(f"{day * 10_000 + i},{60000 + i % 7}.15,0.01,600.0,{t},{'true' if i % 3 else 'false'}")
    return "\n".join(lines) + "\n"


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text)
    return buf.getvalue()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-` answered by 206, as Binance's archive does."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    days = {"2024-08-01": 0, "2024-08-02": 1}
    for stamp, day in days.items():
        for kind, text in (("bookTicker", _book_csv(day, 400)), ("trades", _trades_csv(day, 150))):
            folder = root / "data" / "futures" / "um" / "daily" / kind / "BTCUSDT"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"BTCUSDT-{kind}-{stamp}"
            blob = _zip(f"{name}.csv", text)
            (folder / f"{name}.zip").write_bytes(blob)
            (folder / f"{name}.zip.CHECKSUM").write_text(f"{hashlib.sha256(blob).hexdigest()}  {name}.zip\n")

    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def _fetch(url, out, *extra, kind="bookTicker", market="usdm", start="2024-08-01", end="2024-08-02"):
    return main(["data", "fetch", "--market", market, "--kind", kind, "--symbols", "btcusdt", "--from", start,
                 "--to", end, "--out", str(out), "--base-url", url, *extra])


def test_fetch_verifies_checksums_resumes_and_skips_what_is_there(archive, tmp_path, capsys):
    root, url, server = archive
    out = tmp_path / "data"
    # a download cut short earlier: the first 100 bytes of the first day's file
    blob = (root / "data/futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-08-01.zip").read_bytes()
    part = out / "binance/usdm/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-08-01.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(blob[:100])
    assert _fetch(url, out) == 0
    text = capsys.readouterr().out
    assert "resumed" in text and "fetched" in text and "2/2 files" in text
    got = out / "binance/usdm/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-08-01.zip"
    assert got.read_bytes() == blob and not part.exists()
    assert ("/data/futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-08-01.zip", "bytes=100-") in server.requests
    server.requests.clear()
    assert _fetch(url, out) == 0  # again: nothing to download
    assert capsys.readouterr().out.count("present") == 2
    assert not [p for p, _ in server.requests if p.endswith(".zip")]


def test_a_bad_checksum_keeps_nothing(archive, tmp_path, capsys):
    root, url, _ = archive
    (root / "data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2024-08-02.zip.CHECKSUM").write_text("0" * 64 + "  x\n")
    assert _fetch(url, tmp_path / "data", kind="trades") == 2
    err = capsys.readouterr().err
    assert "bad checksum" in err
    folder = tmp_path / "data/binance/usdm/trades/BTCUSDT"
    assert sorted(p.name for p in folder.iterdir()) == ["BTCUSDT-trades-2024-08-01.zip"]


def test_days_not_published_and_spot_quotes_are_errors(archive, tmp_path, capsys):
    _, url, _ = archive
    assert _fetch(url, tmp_path / "data", end="2024-08-03") == 2
    assert "not published" in capsys.readouterr().err
    assert _fetch(url, tmp_path / "data", market="spot") == 2
    assert "spot archives carry no bookTicker" in capsys.readouterr().err
    assert _fetch(url, tmp_path / "data", start="2024-08-03", end="2024-08-01") == 2
    assert "after --to" in capsys.readouterr().err


def test_replay_a_fetched_folder_and_a_date_range(archive, tmp_path, capsys):
    _, url, _ = archive
    data = tmp_path / "data"
    assert _fetch(url, data) == 0 and _fetch(url, data, kind="trades") == 0
    folder = data / "binance" / "usdm"
    assert main(["run", "--replay", str(folder), "--no-progress", "--out", str(tmp_path / "both")]) == 0
    assert main(["run", "--replay", str(folder), "--from", "2024-08-02", "--to", "2024-08-02", "--no-progress",
                 "--out", str(tmp_path / "day2")]) == 0
    capsys.readouterr()
    both = [r for r in read_records(tmp_path / "both") if r["kind"] == "session_end"][0]
    day2 = [r for r in read_records(tmp_path / "day2") if r["kind"] == "session_end"][0]
    assert both["events"] == 2 * (400 + 150)
    assert day2["events"] == 400 + 150
    start = [r for r in read_records(tmp_path / "day2") if r["kind"] == "session_start"][0]
    assert start["ts_ns"] >= (T0_MS + DAY_MS) * 1_000_000
    assert main(["run", "--replay", str(folder), "--from", "2024-09-01", "--to", "2024-09-02",
                 "--out", str(tmp_path / "none")]) == 2
    assert "no recordings dated 2024-09-01 to 2024-09-02" in capsys.readouterr().err

"""Settings, calendar, validation and the Yahoo CSV reader: pure code, real data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from b3_quotes.config.settings import ConfigError, Settings, load_settings, parse_tickers
from scraper import calendar_b3
from scraper.errors import SourceDataError
from scraper.sources.csv_files import CsvSource, read_yahoo_csv_checked
from scraper.validation import UnstorableValue, check_storable, count_reasons, validate_quotes
from tests.conftest import SAMPLE_DIR, TEST_DATA


def test_parse_tickers_accepts_yahoo_symbols_and_drops_duplicates():
    assert parse_tickers("petr4.sa, VALE3 PETR4") == ("PETR4", "VALE3")


def test_parse_tickers_rejects_garbage():
    with pytest.raises(ConfigError, match="invalid ticker"):
        parse_tickers("PETR4,VA-LE3")


@pytest.mark.parametrize("name", ["TICKERS", "ATIVO", "TICKER"])
def test_load_settings_reads_any_ticker_variable(tmp_path, name):
    settings = load_settings(env={name: "ITUB4"}, env_file=tmp_path / "none")
    assert settings.tickers == ("ITUB4",)
    assert settings.is_local and settings.glue_database == "default"


def test_load_settings_environment_beats_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("TICKERS=PETR4\nBUCKET=from-file\nLAKE_DIR=/data/lake\n")
    settings = load_settings(env={"BUCKET": "from-env"}, env_file=env_file)
    assert settings.tickers == ("PETR4",)
    assert settings.bucket == "from-env" and settings.lake_root == "s3://from-env"


def test_calendar_skips_weekends_and_b3_holidays():
    # 2024-02-12/13 Carnival, 2024-02-14 Ash Wednesday trades from 13:00.
    sessions = calendar_b3.sessions_between(dt.date(2024, 2, 9), dt.date(2024, 2, 15))
    assert sessions == [dt.date(2024, 2, 9), dt.date(2024, 2, 14), dt.date(2024, 2, 15)]
    assert calendar_b3.sessions_between(dt.date(2024, 12, 24), dt.date(2024, 12, 25)) == []


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2024-02-14T10:00:00-03:00", "2024-02-09"),  # Ash Wednesday morning: D-1 skips Carnival
        ("2024-01-08T09:00:00-03:00", "2024-01-05"),  # Monday: last Friday
        ("2024-01-03T23:30:00-03:00", "2024-01-02"),  # late evening in São Paulo, already the 4th in UTC
    ],
)
def test_last_closed_session_is_d_minus_one(now, expected):
    assert calendar_b3.last_closed_session(dt.datetime.fromisoformat(now)) == dt.date.fromisoformat(expected)


# The calendar as of a fixed day, so no test depends on today's date.
RULES = calendar_b3.session_rules(dt.datetime(2025, 1, 10, 12, tzinfo=dt.UTC))


def quotes(*rows):
    return pd.DataFrame(rows, columns=["ticker", "trade_date", "open", "high", "low", "close", "adj_close", "volume"])


def test_validate_quotes_counts_every_rejected_row():
    day = dt.date(2024, 1, 2)
    frame = quotes(
        ("PETR4", day, 30.0, 31.0, 29.0, 30.5, 30.5, 1e6),        # good
        ("VALE3", day, None, 70.0, 68.0, 69.0, 69.0, 5e5),        # missing open
        ("ITUB4", day, 25.0, 26.0, 24.0, 0.0, 0.0, 1e5),          # zero close
        ("BBDC4", day, 15.0, 14.0, 16.0, 15.0, 15.0, 1e5),        # high < low
        ("ABEV3", day, 13.0, 13.5, 12.5, 13.1, 13.1, 1e5),        # superseded by the next row
        ("ABEV3", day, 13.0, 13.5, 12.5, 13.2, 13.2, 1e5),
        ("WEGE3", dt.date(2024, 1, 1), 40.0, 41.0, 39.0, 40.0, 40.0, 0),  # New Year holiday
    )
    valid, rejected = validate_quotes(frame, RULES)
    # VALE3's missing Open leaves a usable close: kept, and recorded.
    assert sorted(valid["ticker"]) == ["ABEV3", "PETR4", "VALE3"]
    assert valid.loc[valid["ticker"] == "ABEV3", "close"].item() == 13.2
    assert count_reasons(rejected) == {"non_positive_price": 1, "high_below_low": 1,
                                       "duplicate_session": 1, "not_a_b3_session": 1}
    assert count_reasons(rejected, "kept") == {"missing_price": 1}


INF = float("inf")


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        ((30.0, 31.0, 29.0, INF, 30.5, 1e6), "non_finite_value", "close inf"),
        ((30.0, 31.0, 29.0, 30.5, 30.5, -INF), "non_finite_value", "volume -inf"),
        ((30.0, 1e308, 29.0, 30.5, 30.5, 1e6), "absurd_magnitude", "high 1e+308"),
        ((30.0, 31.0, 29.0, 30.5, 30.5, 2e15), "absurd_magnitude", "volume 2e+15"),
        ((30.0, 31.0, 29.0, 30.5, 30.5, -5), "negative_volume", "volume -5"),
        ((-1.0, 31.0, 29.0, 30.5, 30.5, 1e6), "non_positive_price", "open -1"),
    ],
)
def test_validate_quotes_rejects_values_no_quote_can_have(row, reason, detail):
    day = dt.date(2024, 1, 2)
    frame = quotes(("PETR4", day, 30.0, 31.0, 29.0, 30.5, 30.5, 1e6), ("VALE3", day, *row))
    valid, rejected = validate_quotes(frame, RULES)
    assert list(valid["ticker"]) == ["PETR4"]
    (bad,) = rejected.to_dict("records")
    assert (bad["ticker"], bad["reason"]) == ("VALE3", reason) and detail in bad["detail"]


def test_validate_quotes_keeps_a_valid_row_when_its_repeat_is_bad():
    day = dt.date(2024, 1, 2)
    frame = quotes(("PETR4", day, 30.0, 31.0, 29.0, 30.5, 30.5, 1e6), ("PETR4", day, 30.0, 31.0, 29.0, 35.0, 35.0, 1e6))
    frame.loc[1, "volume"] = -1
    valid, rejected = validate_quotes(frame)
    assert list(valid["close"]) == [30.5] and list(rejected["reason"]) == ["negative_volume"]


def test_check_storable_names_the_place_of_a_volume_beyond_int64():
    frame = quotes(("PETR4", dt.date(2024, 1, 2), 30.0, 31.0, 29.0, 30.5, 30.5, 1e19))
    with pytest.raises(UnstorableValue, match=r"here: volume 1e\+19 cannot be stored"):
        check_storable(frame, lambda row: "here")
    check_storable(quotes(("PETR4", dt.date(2024, 1, 2), 30.0, 31.0, 29.0, 30.5, 30.5, 9.2e18)), str)


def test_read_yahoo_csv_real_file_with_nulls_and_no_trailing_newline():
    path = SAMPLE_DIR / "PETR4.SA.csv"
    assert not path.read_bytes().endswith(b"\n")
    frame = read_yahoo_csv_checked(path)[0]
    row = frame[frame["trade_date"] == dt.date(2020, 6, 9)].iloc[0]
    assert (row["open"], row["close"], row["volume"]) == (22.030001, 21.719999, 96488300)
    ash_wednesday = frame[frame["trade_date"] == dt.date(2019, 3, 6)].iloc[0]
    assert ash_wednesday[["open", "close", "volume"]].isna().all()  # Yahoo's `null` row


def test_holiday_rows_from_yahoo_are_rejected_not_loaded():
    # Real PETR4 rows on 2017-11-02, 11-15, 11-20, 12-25, 12-29 and 2018-01-25 (B3 holidays)
    # repeat one price with zero volume.
    result = CsvSource(TEST_DATA / "yahoo_holidays").fetch(["PETR4"], None, None)
    valid, rejected = validate_quotes(result.quotes, RULES)
    assert count_reasons(rejected) == {"not_a_b3_session": 6}
    assert len(valid) == len(result.quotes) - 6
    assert dt.date(2017, 12, 25) not in set(valid["trade_date"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Date,Open,High,Low,Close\n2020-01-02,1,2,1,2", "missing column(s) Volume"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,1,2,2,10\n02/01/2020,1,2,1,2,2,10", ":3: bad date"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-02,1,2,abc,2,2,10", ":2: bad Low value 'abc'"),
        ("", "not a Yahoo CSV"),
    ],
)
def test_read_yahoo_csv_malformed_names_file_and_line(tmp_path: Path, content, message):
    path = tmp_path / "PETR4.SA.csv"
    path.write_text(content)
    with pytest.raises(SourceDataError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        read_yahoo_csv_checked(path)[0]
    assert str(path) in str(err.value)


def test_csv_source_reports_tickers_without_file(tmp_path):
    result = CsvSource(SAMPLE_DIR).fetch(["PETR4", "XPTO3"], dt.date(2020, 6, 1), dt.date(2020, 6, 9))
    assert result.missing == ["XPTO3"]
    # Yahoo's header names are the CSV reader's: the source returns raw's.
    assert list(result.quotes.columns) == ["ticker", "trade_date", "open", "high", "low", "close", "adj_close", "volume"]
    assert sorted(set(result.quotes["trade_date"])) == [dt.date(2020, 6, d) for d in (1, 2, 3, 4, 5, 8, 9)]


def test_summary_names_the_first_20_tickers_then_how_many_more():
    from scraper.run import ScrapeReport

    tickers = [f"T{n:03d}" for n in range(745)]
    line = ScrapeReport(tickers, None, None).summary_lines(str)[0]
    assert line == "tickers   745: " + ", ".join(f"T{n:03d}" for n in range(20)) + " ... and 725 more"
    assert ScrapeReport(["PETR4", "VALE3"], None, None).summary_lines(str)[0] == "tickers   2: PETR4, VALE3"


def test_yahoo_symbol_of_the_index_is_bvsp():
    from b3_quotes.contract.tickers import yahoo_symbol

    assert (yahoo_symbol("IBOV"), yahoo_symbol("PETR4")) == ("^BVSP", "PETR4.SA")


@pytest.mark.parametrize(("value", "cores"), [("", 2), ("1", 1), (" 2 ", 2), ("4", 4)])
def test_local_spark_cores_come_from_the_environment(value, cores):
    from b3_quotes.local_mode.spark import spark_cores

    assert spark_cores({"LOCAL_SPARK_CORES": value}) == cores


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_local_spark_cores_refuses_what_is_not_a_core_count(value):
    from b3_quotes.local_mode.spark import spark_cores

    with pytest.raises(ValueError, match="LOCAL_SPARK_CORES"):
        spark_cores({"LOCAL_SPARK_CORES": value})


def test_the_runtime_is_local_without_a_bucket_and_aws_with_one(tmp_path, monkeypatch):
    from moto import mock_aws

    from b3_quotes.runtime import AwsRuntime, LocalRuntime, build_runtime

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    local = build_runtime(Settings(lake_dir=tmp_path))
    assert isinstance(local, LocalRuntime) and local.database is None
    assert local.where == f"the local lake {tmp_path}" and local.lake.describe("raw/x") == f"{tmp_path}/raw/x"
    with pytest.raises(ConfigError, match="no lake at"):
        build_runtime(Settings(lake_dir=tmp_path / "none")).require_lake()
    with mock_aws():
        import boto3

        session = boto3.Session(region_name="sa-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        aws = build_runtime(Settings(bucket="b3-lake", aws_region="sa-east-1", glue_database="b3"), session)
        assert isinstance(aws, AwsRuntime) and aws.lake.session is session
        assert (aws.where, aws.database, aws.lake.region) == ("s3://b3-lake", "b3", "sa-east-1")
        session.client("s3").create_bucket(Bucket="b3-lake",
                                           CreateBucketConfiguration={"LocationConstraint": "sa-east-1"})
        aws.lake.write_bytes("raw/_manifests/r.json", b"{}")
        assert session.client("s3").get_object(Bucket="b3-lake", Key="raw/_manifests/r.json")["Body"].read() == b"{}"


@pytest.mark.parametrize(("error", "code", "line"), [
    ("SourceDataError", 5, "error: bad input, nothing written: boom"),
    ("SourceUnavailable", 4, "error: source unavailable, nothing written: boom"),
    ("ConfigError", 2, "error: boom"),
])
def test_each_error_type_maps_to_its_exit_code_and_line(error, code, line, monkeypatch, capsys):
    from scraper import scraper_upload

    kinds = {"SourceDataError": scraper_upload.SourceDataError, "SourceUnavailable": scraper_upload.SourceUnavailable,
             "ConfigError": ConfigError}

    def failing(args):
        raise kinds[error]("boom")

    monkeypatch.setattr(scraper_upload, "run", failing)
    assert scraper_upload.main([]) == code
    assert capsys.readouterr().err.strip() == line


def test_raw_writer_writes_each_day_its_own_rows_by_ticker_then_the_manifest(tmp_path):
    import hashlib
    import json

    import pyarrow.parquet as pq

    from b3_quotes.contract.tables import RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    day_1, day_2 = dt.date(2021, 6, 24), dt.date(2021, 6, 25)
    frame = pd.DataFrame({"ticker": ["VALE3", "PETR4", "VALE3"], "trade_date": [day_2, day_2, day_1],
                          "open": [1.0, 2.0, 3.0], "high": [1.5, 2.5, 3.5], "low": [0.5, 1.5, 2.5],
                          "close": [1.2, 2.2, 3.2], "adj_close": [1.2, 2.2, 3.2], "volume": [10.0, 20.0, 30.4]})
    stamp = RunStamp("csv", {"PETR4": "PETR4.SA"}, dt.datetime(2021, 6, 26, tzinfo=dt.UTC), "r1")
    run = write_raw_run(Lake.local(tmp_path), {RAW_QUOTES: frame}, stamp)

    def named(*tickers: str) -> str:
        return f"csv-{hashlib.sha1(','.join(tickers).encode()).hexdigest()[:12]}.parquet"

    assert run.keys == [f"raw/quotes/dt=2021-06-24/{named('VALE3')}", f"raw/quotes/dt=2021-06-25/{named('PETR4', 'VALE3')}"]
    first, second = (pq.read_table(tmp_path / key, partitioning=None).to_pylist() for key in run.keys)
    assert [(r["trade_date"], r["ticker"], r["close"], r["volume"]) for r in first] == [(day_1, "VALE3", 3.2, 30)]
    assert [(r["trade_date"], r["ticker"], r["open"], r["source_symbol"]) for r in second] == [
        (day_2, "PETR4", 2.0, "PETR4.SA"), (day_2, "VALE3", 1.0, "VALE3")]
    manifest = json.loads((tmp_path / run.manifest_key).read_text())
    assert manifest["partitions"] == ["2021-06-24", "2021-06-25"] and manifest["files"] == run.keys
    assert manifest["rows"] == 3


def _quote(ticker: str, day: dt.date) -> dict:
    return {"ticker": ticker, "trade_date": day, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
            "adj_close": 10.5, "volume": 100.0}


def test_one_run_writes_every_raw_table_it_holds_then_one_manifest_naming_what_the_refine_reads(tmp_path):
    """Quotes, their issues, corporate events and the IBOV portfolio go through one writer: each
    table's files under its own folder, then the manifest, which names the quotes' days and the
    events' ex dates (the windows the refine rewrites) and lists their files, not the others'."""
    import json

    import pyarrow.parquet as pq

    from b3_quotes.contract.tables import CORPORATE_EVENTS, IBOV_PORTFOLIO, QUOTE_ISSUES, RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    day, ex_day, portfolio_day = dt.date(2021, 6, 25), dt.date(2021, 6, 10), dt.date(2021, 6, 28)
    quotes = pd.DataFrame([_quote("PETR4", day)])
    issues = pd.DataFrame([{**_quote("VALE3", day), "reason": "missing_price", "action": "rejected", "detail": "no close"}])
    # The download's own event carries no source (the run's is written); a file's names its own.
    events = pd.DataFrame([
        {"ticker": "PETR4", "ex_date": ex_day, "kind": "split", "share_ratio": 2.0, "cash_per_share": 0.0,
         "source_label": "2:1", "source": None},
        {"ticker": "ITUB4", "ex_date": ex_day, "kind": "cash_dividend", "share_ratio": 1.0, "cash_per_share": 0.5,
         "source_label": "DIVIDENDO", "source": "b3"}])
    portfolio = pd.DataFrame([{"ticker": "PETR4", "name": "PETROBRAS", "type": "PN N2", "segment": "",
                               "weight_pct": 6.5, "theoretical_qty": 4_000_000_000, "portfolio_date": portfolio_day}])
    stamp = RunStamp("csv", {}, dt.datetime(2021, 6, 29, tzinfo=dt.UTC), "r1")
    run = write_raw_run(Lake.local(tmp_path), {RAW_QUOTES: quotes, QUOTE_ISSUES: issues, CORPORATE_EVENTS: events,
                                               IBOV_PORTFOLIO: portfolio}, stamp)

    assert run.keys_of(IBOV_PORTFOLIO) == ["raw/ibov_portfolio/dt=2021-06-28/ibov.parquet"]
    assert run.keys_of(CORPORATE_EVENTS) == ["raw/corporate_events/dt=2021-06-10/b3-ITUB4.parquet",
                                             "raw/corporate_events/dt=2021-06-10/csv-PETR4.parquet"]
    assert [k.split("/")[:3] for k in run.issue_keys] == [["raw", "quote_issues", "dt=2021-06-25"]]
    assert [k.split("/")[:3] for k in run.keys] == [["raw", "quotes", "dt=2021-06-25"]]
    manifest = json.loads((tmp_path / run.manifest_key).read_text())
    assert manifest["partitions"] == ["2021-06-10", "2021-06-25"] == run.days
    assert manifest["tickers"] == ["ITUB4", "PETR4"]  # VALE3's only row was rejected
    assert sorted(manifest["files"]) == sorted([*run.keys_of(CORPORATE_EVENTS), *run.keys])
    assert manifest["issue_files"] == run.issue_keys and manifest["rejected_rows"] == 1 and manifest["rows"] == 1
    # The manifest is written last: nothing of the run is newer.
    newest = max((tmp_path / "raw").rglob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    assert (tmp_path / run.manifest_key).stat().st_mtime_ns >= newest.stat().st_mtime_ns
    portfolio_rows = pq.read_table(tmp_path / run.keys_of(IBOV_PORTFOLIO)[0]).to_pylist()
    assert [(r["ticker"], r["weight_pct"], r["portfolio_date"]) for r in portfolio_rows] == [("PETR4", 6.5, portfolio_day)]


def test_a_run_of_tables_the_refine_does_not_read_commits_no_manifest(tmp_path):
    """Issues and a portfolio alone are written, and trigger nothing: no manifest."""
    from b3_quotes.contract.tables import IBOV_PORTFOLIO, QUOTE_ISSUES, RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    day = dt.date(2021, 6, 25)
    issues = pd.DataFrame([{**_quote("VALE3", day), "reason": "missing_price", "action": "rejected", "detail": "x"}])
    portfolio = pd.DataFrame([{"ticker": "PETR4", "name": "PETROBRAS", "type": "PN", "segment": "", "weight_pct": 100.0,
                               "theoretical_qty": 1, "portfolio_date": day}])
    run = write_raw_run(Lake.local(tmp_path), {QUOTE_ISSUES: issues, IBOV_PORTFOLIO: portfolio, RAW_QUOTES: quotes_none()},
                        RunStamp("b3", {}, dt.datetime(2021, 6, 26, tzinfo=dt.UTC), "r2"))
    assert run.manifest_key == "" and run.keys == [] and len(run.issue_keys) == 1
    assert not (tmp_path / "raw" / "_manifests").exists()
    assert (tmp_path / "raw" / "ibov_portfolio" / "dt=2021-06-25" / "ibov.parquet").is_file()


def quotes_none() -> pd.DataFrame:
    return pd.DataFrame(columns=list(_quote("X", dt.date(2021, 1, 4))))


def test_a_table_with_no_raw_writer_is_refused_before_anything_is_written(tmp_path):
    from b3_quotes.contract.tables import QUOTES_DAILY, RAW_QUOTES
    from b3_quotes.storage import Lake
    from scraper.raw_writer import RunStamp, write_raw_run

    quotes = pd.DataFrame([_quote("PETR4", dt.date(2021, 6, 25))])
    with pytest.raises(ValueError, match="no raw writer for quotes_daily"):
        write_raw_run(Lake.local(tmp_path), {RAW_QUOTES: quotes, QUOTES_DAILY: quotes},
                      RunStamp("csv", {}, dt.datetime(2021, 6, 26, tzinfo=dt.UTC), "r3"))
    assert not any(tmp_path.iterdir())


def test_what_a_source_returns_joins_the_tables_given_with_it_table_by_table():
    from b3_quotes.contract.tables import CORPORATE_EVENTS, IBOV_PORTFOLIO, RAW_QUOTES
    from scraper.sources.base import FetchResult

    day = dt.date(2021, 6, 25)
    fetched = FetchResult({RAW_QUOTES: pd.DataFrame([_quote("PETR4", day)]),
                           CORPORATE_EVENTS: pd.DataFrame({"ticker": ["PETR4"], "ex_date": [day]})},
                          missing=["XPTO3"], symbols={"PETR4": "PETR4.SA"})
    given = FetchResult({CORPORATE_EVENTS: pd.DataFrame({"ticker": ["VALE3"], "ex_date": [day]}),
                         IBOV_PORTFOLIO: pd.DataFrame({"ticker": ["PETR4"]}), RAW_QUOTES: quotes_none()})
    run = fetched.with_tables(given)
    assert list(run.events["ticker"]) == ["PETR4", "VALE3"]
    assert list(run.tables[IBOV_PORTFOLIO]["ticker"]) == ["PETR4"] and list(run.quotes["ticker"]) == ["PETR4"]
    assert run.missing == ["XPTO3"] and run.symbols == {"PETR4": "PETR4.SA"}
    assert FetchResult().quotes.empty and FetchResult().events is None and FetchResult().rows() == {}


class _OneDaySource:
    """A source whose one download is the given quotes (validation then judges them)."""

    name = "csv"

    def __init__(self, quotes: pd.DataFrame) -> None:
        self.quotes = quotes

    def fetch(self, tickers, start, end):
        from b3_quotes.contract.tables import RAW_QUOTES
        from scraper.sources.base import FetchResult

        return FetchResult({RAW_QUOTES: self.quotes})


def _events(ticker: str, day: dt.date) -> pd.DataFrame:
    return pd.DataFrame([{"ticker": ticker, "ex_date": day, "kind": "split", "share_ratio": 2.0, "cash_per_share": 0.0,
                          "source_label": "2:1", "source": "events_file"}])


def test_events_given_with_a_run_whose_quotes_are_all_rejected_are_loaded_and_the_run_exits_3(tmp_path):
    import json

    from b3_quotes.contract.tables import CORPORATE_EVENTS
    from b3_quotes.storage import Lake
    from scraper.run import EXIT_NO_DATA, scrape
    from scraper.sources.base import FetchResult

    day = dt.date(2021, 6, 25)
    bad = pd.DataFrame([{**_quote("PETR4", day), "close": -1.0}])  # no quote has a negative close
    report = scrape(_OneDaySource(bad), Lake.local(tmp_path), ["PETR4"], day, day,
                    dt.datetime(2021, 6, 28, tzinfo=dt.UTC), given=FetchResult({CORPORATE_EVENTS: _events("PETR4", day)}))
    assert report.rejected == {"non_positive_price": 1} and report.events == 1
    assert report.exit_code == EXIT_NO_DATA and report.quotes_written == 0
    assert report.written is not None  # the event is committed: the refine rewrites its window
    manifest = json.loads((tmp_path / report.written.manifest_key).read_text())
    assert manifest["rows"] == 0 and manifest["partitions"] == ["2021-06-25"]
    assert manifest["files"] == ["raw/corporate_events/dt=2021-06-25/events_file-PETR4.parquet"]


def test_a_range_of_no_session_still_writes_the_portfolio_given(tmp_path):
    from b3_quotes.contract.tables import IBOV_PORTFOLIO
    from b3_quotes.storage import Lake
    from scraper.run import EXIT_OK, scrape
    from scraper.sources.base import FetchResult

    saturday, sunday = dt.date(2021, 6, 26), dt.date(2021, 6, 27)
    portfolio = pd.DataFrame([{"ticker": "PETR4", "name": "PETROBRAS", "type": "PN", "segment": "", "weight_pct": 100.0,
                               "theoretical_qty": 1, "portfolio_date": dt.date(2021, 6, 25)}])
    source = _OneDaySource(pd.DataFrame([_quote("PETR4", saturday)]))  # never asked: there is no session
    report = scrape(source, Lake.local(tmp_path), ["PETR4"], saturday, sunday, dt.datetime(2021, 6, 28, tzinfo=dt.UTC),
                    given=FetchResult({IBOV_PORTFOLIO: portfolio}))
    assert report.notice.startswith("no B3 session between 2021-06-26 and 2021-06-27")
    assert report.exit_code == EXIT_OK and report.written is None and report.fetched_rows == 0
    assert (tmp_path / "raw" / "ibov_portfolio" / "dt=2021-06-25" / "ibov.parquet").is_file()
    assert not (tmp_path / "raw" / "quotes").exists()


def test_an_events_only_run_exits_0_and_names_the_events_tickers(tmp_path):
    from b3_quotes.contract.tables import CORPORATE_EVENTS
    from b3_quotes.storage import Lake
    from scraper.run import EXIT_OK, scrape
    from scraper.sources.base import FetchResult

    events = pd.concat([_events("VALE3", dt.date(2021, 6, 24)), _events("ABEV3", dt.date(2021, 6, 25))])
    report = scrape(None, Lake.local(tmp_path), [], None, None, dt.datetime(2021, 6, 28, tzinfo=dt.UTC),
                    given=FetchResult({CORPORATE_EVENTS: events}))
    assert report.exit_code == EXIT_OK and report.tickers == ["ABEV3", "VALE3"] and report.events == 2
    assert report.written is not None and report.written.days == ["2021-06-24", "2021-06-25"]
    empty = scrape(None, Lake.local(tmp_path / "other"), [], None, None, dt.datetime(2021, 6, 28, tzinfo=dt.UTC))
    assert empty.notice == "no ticker and no corporate event to load" and empty.exit_code == EXIT_OK

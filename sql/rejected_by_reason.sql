-- Data-quality report: what each scrape run rejected, by reason, with one example row.
-- Runs on Athena and on DuckDB (python -m catalog.query --file sql/rejected_by_reason.sql).
SELECT run_id,
       source,
       reason,
       count(*) AS rejected_rows,
       count(DISTINCT ticker) AS tickers,
       min(trade_date) AS first_day,
       max(trade_date) AS last_day,
       min(ticker || ' ' || coalesce(CAST(trade_date AS varchar), '?') || ': ' || detail) AS example
FROM rejected_quotes
GROUP BY run_id, source, reason
ORDER BY run_id DESC, rejected_rows DESC, reason

-- Data-quality report: the rows each scrape run rejected or kept with an issue, by reason,
-- with one example row. Runs on Athena and on DuckDB
-- (python -m b3_quotes.catalog.query --file sql/quote_issues_by_reason.sql).
SELECT run_id,
       source,
       action,
       reason,
       count(*) AS issue_rows,
       count(DISTINCT ticker) AS tickers,
       min(trade_date) AS first_day,
       max(trade_date) AS last_day,
       min(ticker || ' ' || coalesce(CAST(trade_date AS varchar), '?') || ': ' || detail) AS example
FROM quote_issues
GROUP BY run_id, source, action, reason
ORDER BY run_id DESC, action DESC, issue_rows DESC, reason

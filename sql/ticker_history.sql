-- One ticker's whole history: every session with its return and moving averages.
-- The compact table holds it in one file per year, sorted by ticker: a few objects to read.
-- python -m b3_quotes.catalog.query --file sql/ticker_history.sql --param ticker=VALE3 (PETR4 without it)
-- param ticker = PETR4
SELECT dt, open_price, high_price, low_price, close_price, volume, daily_return, ma_5, ma_20,
       days_since_prev_session
FROM quotes_daily_compact
WHERE ticker = ${ticker}
ORDER BY dt

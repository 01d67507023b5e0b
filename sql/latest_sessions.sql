-- The last three sessions of every ticker, with returns and moving averages.
SELECT ticker, dt, close_price, daily_return, ma_5, ma_20, days_since_prev_session
FROM (
    SELECT d.*, row_number() OVER (PARTITION BY ticker ORDER BY dt DESC) AS recency
    FROM quotes_daily_compact d
) latest
WHERE recency <= 3
ORDER BY ticker, dt DESC

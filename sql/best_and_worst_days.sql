-- Each ticker's best and worst session by daily return.
SELECT ticker,
       max(daily_return) AS best_return,
       min(daily_return) AS worst_return,
       count(*) AS sessions
FROM quotes_daily_compact
WHERE daily_return IS NOT NULL
GROUP BY ticker
ORDER BY ticker

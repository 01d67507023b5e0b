-- Daily return of the IBOV constituents weighted by the latest portfolio snapshot's weights.
WITH latest_portfolio AS (
    SELECT ticker, weight_pct
    FROM ibov_portfolio
    WHERE dt = (SELECT max(dt) FROM ibov_portfolio)
)
SELECT q.dt,
       count(*) AS constituents_quoted,
       round(sum(p.weight_pct), 3) AS weight_pct_covered,
       sum(p.weight_pct * q.daily_return)
         / nullif(sum(CASE WHEN q.daily_return IS NOT NULL THEN p.weight_pct END), 0) AS weighted_daily_return
FROM quotes_daily_compact q
JOIN latest_portfolio p ON q.ticker = p.ticker
GROUP BY q.dt
ORDER BY q.dt DESC
LIMIT 10

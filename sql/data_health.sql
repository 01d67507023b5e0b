-- Data health: one row per finding, ticker and session (python -m b3_quotes.catalog.health prints them).
--   sessions_missing            the B3 calendar has sessions between this one and the ticker's previous one
--                               in the lake (daily_return is null here); previous_session names it
--   zero_volume                 a session with no share traded
--   jump_without_event          |daily_return| above 50 % with no corporate event on the session
--   event_without_move          a split, reverse split or bonus, but the traded price moved less than half
--                               of what it implies (prices already adjusted, or a wrong event?)
--   distribution_without_event  COTAHIST's distribution number moved, and no event is loaded for it
--   source_changed              the price source differs from the previous session's
WITH daily AS (
    SELECT ticker, trade_date, close_price, volume, daily_return, share_ratio, cash_per_share, gap_before, source,
           LAG(close_price) OVER (PARTITION BY ticker ORDER BY trade_date) AS previous_close,
           LAG(trade_date) OVER (PARTITION BY ticker ORDER BY trade_date) AS previous_session,
           LAG(source) OVER (PARTITION BY ticker ORDER BY trade_date) AS previous_source
    FROM quotes_daily_compact
),
distributions AS (
    SELECT ticker, trade_date, dismes, LAG(dismes) OVER (PARTITION BY ticker ORDER BY trade_date) AS previous_dismes
    FROM (SELECT ticker, trade_date, MAX(dismes) AS dismes FROM quotes WHERE dismes IS NOT NULL
          GROUP BY ticker, trade_date) b3
)
SELECT ticker, trade_date, finding, previous_session, value, note FROM (
    SELECT ticker, trade_date, 'sessions_missing' AS finding, previous_session, CAST(NULL AS DOUBLE) AS value,
           CAST(NULL AS VARCHAR) AS note
    FROM daily WHERE gap_before
    UNION ALL
    SELECT ticker, trade_date, 'zero_volume', previous_session, CAST(volume AS DOUBLE), NULL
    FROM daily WHERE volume = 0
    UNION ALL
    SELECT ticker, trade_date, 'jump_without_event', previous_session, daily_return, NULL
    FROM daily WHERE ABS(daily_return) > 0.5 AND share_ratio = 1
    UNION ALL
    SELECT ticker, trade_date, 'event_without_move', previous_session, close_price / previous_close - 1,
           CAST(share_ratio AS VARCHAR)
    FROM daily WHERE share_ratio <> 1 AND ABS(close_price / previous_close - 1) < ABS(1 / share_ratio - 1) / 2
    UNION ALL
    SELECT d.ticker, d.trade_date, 'distribution_without_event', d.previous_session, CAST(m.dismes AS DOUBLE),
           CAST(m.previous_dismes AS VARCHAR)
    FROM distributions m JOIN daily d ON d.ticker = m.ticker AND d.trade_date = m.trade_date
    WHERE m.dismes <> m.previous_dismes AND d.share_ratio = 1 AND d.cash_per_share = 0
    UNION ALL
    SELECT ticker, trade_date, 'source_changed', previous_session, NULL, previous_source || ' -> ' || source
    FROM daily WHERE source <> previous_source
) findings
ORDER BY ticker, trade_date, finding

-- Month-by-month summary per ticker: sessions, range, volume and return.
SELECT ticker, month, sessions, open_price, high_price, low_price, close_price,
       total_volume, avg_close_price, monthly_return
FROM quotes_monthly_compact
ORDER BY ticker, month

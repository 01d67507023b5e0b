"""The price sources: `registry` lists them, `base` is what they share, one module per source family."""

"""New-product demand forecasting: CrossAttnRNN, captions, baselines."""

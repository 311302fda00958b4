"""Next-basket prediction: product autoencoder, CNNGRU, AttentionGRU, XGBoost, frequency baselines."""

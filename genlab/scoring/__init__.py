"""Building the scorers of ``genlab eval`` and of training: feature networks, real statistics, reference classifier."""

"""What every process shares: settings, the trading clock, logging set-up, typed broker errors,
private files, notifications and the broker SDK's plumbing. It imports nothing of the daemon, the web or ops."""

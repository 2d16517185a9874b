"""Sizes a buy with true division, returning a float share count."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.cash = initial_capital

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        return ("buy", self.cash // bars.close[-1])

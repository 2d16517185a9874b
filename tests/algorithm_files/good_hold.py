"""Always holds: the smallest valid algorithm."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def get_data_requirements(self, current_time):
        return {"bars": 3}

    def on_data(self, bars, transaction_history):
        return ("hold", 0)

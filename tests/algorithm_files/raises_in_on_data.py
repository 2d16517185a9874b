"""Raises a ZeroDivisionError every minute."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 2}

    def on_data(self, bars, transaction_history):
        return ("buy", 1 // 0)

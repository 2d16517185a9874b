"""Asks for a number of bars that is not a positive integer."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": "fifty"}

    def on_data(self, bars, transaction_history):
        return ("hold", 0)

"""Tries to rewrite a transaction it is given."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 1}

    def on_data(self, bars, transaction_history):
        transaction_history[0]["shares"] = 1_000_000
        return ("hold", 0)

"""Tries to rewrite the bars and the history it is given."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def get_data_requirements(self, current_time):
        return {"bars": 2}

    def on_data(self, bars, transaction_history):
        bars.close[-1] = 0.0
        return ("hold", 0)
